package main

import (
	"fmt"
	"strings"
)

func main() {
	w := strings.Fields("the quick brown fox jumps over the lazy dog")
	for i, j := 0, len(w)-1; i < j; i, j = i+1, j-1 {
		w[i], w[j] = w[j], w[i]
	}
	fmt.Println(strings.Join(w, " "))
}
