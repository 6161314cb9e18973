package main

import (
	"fmt"
	"strconv"
	"strings"
)

func main() {
	a, b := 0, 1
	var out []string
	for i := 0; i < 20; i++ {
		out = append(out, strconv.Itoa(a))
		a, b = b, a+b
	}
	fmt.Println(strings.Join(out, ","))
}
