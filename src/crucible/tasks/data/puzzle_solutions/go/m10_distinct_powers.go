package main

import (
	"fmt"
	"math/big"
)

func main() {
	seen := map[string]bool{}
	for a := int64(2); a <= 60; a++ {
		for b := int64(2); b <= 60; b++ {
			seen[new(big.Int).Exp(big.NewInt(a), big.NewInt(b), nil).String()] = true
		}
	}
	fmt.Println(len(seen))
}
