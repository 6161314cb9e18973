package main

import (
	"fmt"
	"math/big"
)

func main() {
	num := new(big.Int).Lsh(big.NewInt(1), 100)
	den := new(big.Int).Exp(big.NewInt(3), big.NewInt(40), nil)
	whole, rest := new(big.Int).QuoRem(num, den, new(big.Int))
	digits := ""
	ten := big.NewInt(10)
	for i := 0; i < 30; i++ {
		rest.Mul(rest, ten)
		d := new(big.Int)
		d.QuoRem(rest, den, rest)
		digits += d.String()
	}
	fmt.Printf("%s.%s\n", whole, digits)
}
