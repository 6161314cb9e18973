package main

import (
	"fmt"
	"math/big"
)

func main() {
	n := 250
	p := make([]*big.Int, n+1)
	for i := range p {
		p[i] = new(big.Int)
	}
	p[0].SetInt64(1)
	for part := 1; part <= n; part++ {
		for t := part; t <= n; t++ {
			p[t].Add(p[t], p[t-part])
		}
	}
	fmt.Println(p[n])
}
