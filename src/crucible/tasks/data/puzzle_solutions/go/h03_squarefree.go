package main

import "fmt"

func main() {
	n := int64(1000000000000)
	root := int64(1000000)
	mu := make([]int64, root+1)
	composite := make([]bool, root+1)
	for i := range mu {
		mu[i] = 1
	}
	for p := int64(2); p <= root; p++ {
		if !composite[p] {
			for m := p; m <= root; m += p {
				composite[m] = true
				mu[m] = -mu[m]
			}
			for m := p * p; m <= root; m += p * p {
				mu[m] = 0
			}
		}
	}
	total := int64(0)
	for d := int64(1); d <= root; d++ {
		total += mu[d] * (n / (d * d))
	}
	fmt.Println(total)
}
