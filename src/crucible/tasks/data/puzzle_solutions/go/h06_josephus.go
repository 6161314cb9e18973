package main

import "fmt"

func main() {
	n, k, survivor := 5000000, 3, 0
	for m := 2; m <= n; m++ {
		survivor = (survivor + k) % m
	}
	fmt.Println(survivor + 1)
}
