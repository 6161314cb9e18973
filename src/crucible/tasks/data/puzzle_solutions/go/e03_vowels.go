package main

import (
	"fmt"
	"strings"
)

func main() {
	s := "Programming puzzles are a delightful way to sharpen your algorithmic intuition"
	n := 0
	for _, c := range s {
		if strings.ContainsRune("aeiouAEIOU", c) {
			n++
		}
	}
	fmt.Println(n)
}
