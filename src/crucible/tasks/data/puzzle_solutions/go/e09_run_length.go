package main

import "fmt"

func main() {
	s, out := "aaabccddddde", ""
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j] == s[i] {
			j++
		}
		out += fmt.Sprintf("%c%d", s[i], j-i)
		i = j
	}
	fmt.Println(out)
}
