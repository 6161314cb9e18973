package main

import (
	"fmt"
	"strconv"
	"strings"
)

func main() {
	term := "1"
	for n := 1; n < 30; n++ {
		var b strings.Builder
		for i := 0; i < len(term); {
			j := i
			for j < len(term) && term[j] == term[i] {
				j++
			}
			b.WriteString(strconv.Itoa(j - i))
			b.WriteByte(term[i])
			i = j
		}
		term = b.String()
	}
	fmt.Println(len(term))
}
