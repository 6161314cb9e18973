package main

import "fmt"

func main() {
	n, z := 2025, 0
	for n > 0 {
		n /= 5
		z += n
	}
	fmt.Println(z)
}
