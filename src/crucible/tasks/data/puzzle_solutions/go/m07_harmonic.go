package main

import "fmt"

func main() {
	s := 0.0
	for k := 1; k <= 1000; k++ {
		s += 1 / float64(k)
	}
	fmt.Printf("%.10f\n", s)
}
