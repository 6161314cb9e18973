package main

import "fmt"

func main() {
	n := int64(1000000000000)
	total := int64(0)
	for k := int64(1); k <= n; {
		q := n / k
		last := n / q
		total += q * (last - k + 1)
		k = last + 1
	}
	fmt.Println(total)
}
