package main

import (
	"fmt"
	"math/big"
)

func main() {
	// 2^(3^(4^5)) mod p with p prime: reduce the exponent mod p-1 (Fermat; gcd(2, p) = 1).
	p := big.NewInt(1000000007)
	pm1 := big.NewInt(1000000006)
	e := new(big.Int).Exp(big.NewInt(3), big.NewInt(1024), pm1)
	fmt.Println(new(big.Int).Exp(big.NewInt(2), e, p))
}
