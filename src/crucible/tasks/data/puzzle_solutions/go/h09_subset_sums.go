package main

import (
	"fmt"
	"math/big"
)

func main() {
	ways := make([]*big.Int, 5051)
	for i := range ways {
		ways[i] = new(big.Int)
	}
	ways[0].SetInt64(1)
	for k := 1; k <= 100; k++ {
		for t := 5050; t >= k; t-- {
			ways[t].Add(ways[t], ways[t-k])
		}
	}
	fmt.Println(ways[2525])
}
