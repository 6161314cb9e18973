package main

import (
	"fmt"
	"math/big"
)

func main() {
	s := new(big.Int).Lsh(big.NewInt(1), 70).String()
	out := ""
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out += ","
		}
		out += string(c)
	}
	fmt.Println(out)
}
