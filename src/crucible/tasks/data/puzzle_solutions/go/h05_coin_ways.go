package main

import (
	"fmt"
	"math/big"
)

func main() {
	target := 100000
	ways := make([]*big.Int, target+1)
	for i := range ways {
		ways[i] = new(big.Int)
	}
	ways[0].SetInt64(1)
	for _, coin := range []int{1, 2, 5, 10, 20, 50, 100, 200} {
		for t := coin; t <= target; t++ {
			ways[t].Add(ways[t], ways[t-coin])
		}
	}
	fmt.Println(ways[target])
}
