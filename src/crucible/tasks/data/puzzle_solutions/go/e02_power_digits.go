package main

import (
	"fmt"
	"math/big"
)

func main() {
	s := 0
	for _, d := range new(big.Int).Lsh(big.NewInt(1), 1000).String() {
		s += int(d - '0')
	}
	fmt.Println(s)
}
