package main

import "fmt"

func main() {
	limit := 300000
	cache := make([]int, limit)
	cache[1] = 1
	best, bestLen := 1, 1
	for start := 2; start < limit; start++ {
		n, steps := start, 0
		for n >= limit || cache[n] == 0 {
			if n%2 == 0 {
				n /= 2
			} else {
				n = 3*n + 1
			}
			steps++
		}
		length := steps + cache[n]
		cache[start] = length
		if length > bestLen {
			best, bestLen = start, length
		}
	}
	fmt.Println(best)
}
