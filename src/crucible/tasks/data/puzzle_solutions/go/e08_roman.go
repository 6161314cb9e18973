package main

import "fmt"

func main() {
	values := []int{1000, 900, 500, 400, 100, 90, 50, 40, 10, 9, 5, 4, 1}
	syms := []string{"M", "CM", "D", "CD", "C", "XC", "L", "XL", "X", "IX", "V", "IV", "I"}
	n, out := 2948, ""
	for i, v := range values {
		for n >= v {
			out += syms[i]
			n -= v
		}
	}
	fmt.Println(out)
}
