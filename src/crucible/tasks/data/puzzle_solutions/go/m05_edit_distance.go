package main

import "fmt"

func main() {
	a, b := "intention of the algorithm", "execution of an algorithm"
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, min(cur[j-1]+1, prev[j-1]+cost))
		}
		prev = cur
	}
	fmt.Println(prev[len(b)])
}

func min(a, b int) int {
	if a < b {
		return a
	}
	return b
}
