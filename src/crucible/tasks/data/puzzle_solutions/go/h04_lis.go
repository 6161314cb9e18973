package main

import (
	"fmt"
	"sort"
)

func main() {
	x := uint64(42)
	var tails []uint64
	for i := 0; i < 1000000; i++ {
		x = (1103515245*x + 12345) % (1 << 31)
		v := x % 1000000
		j := sort.Search(len(tails), func(k int) bool { return tails[k] >= v })
		if j == len(tails) {
			tails = append(tails, v)
		} else {
			tails[j] = v
		}
	}
	fmt.Println(len(tails))
}
