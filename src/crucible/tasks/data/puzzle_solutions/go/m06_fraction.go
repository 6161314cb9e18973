package main

import (
	"fmt"
	"math/big"
)

func main() {
	s := new(big.Rat)
	for k := int64(1); k <= 15; k++ {
		s.Add(s, big.NewRat(1, k*k))
	}
	fmt.Println(s.String())
}
