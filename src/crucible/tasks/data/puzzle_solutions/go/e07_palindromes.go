package main

import (
	"fmt"
	"strconv"
)

func main() {
	c := 0
	for n := 1; n <= 100000; n++ {
		s := strconv.Itoa(n)
		ok := true
		for i, j := 0, len(s)-1; i < j; i, j = i+1, j-1 {
			if s[i] != s[j] {
				ok = false
				break
			}
		}
		if ok {
			c++
		}
	}
	fmt.Println(c)
}
