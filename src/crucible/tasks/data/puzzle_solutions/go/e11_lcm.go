package main

import "fmt"

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func main() {
	l := int64(1)
	for i := int64(1); i <= 25; i++ {
		l = l / gcd(l, i) * i
	}
	fmt.Println(l)
}
