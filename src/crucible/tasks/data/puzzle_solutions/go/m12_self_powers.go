package main

import "fmt"

func mulmod(a, b, m uint64) uint64 {
	var r uint64
	a %= m
	for b > 0 {
		if b&1 == 1 {
			r = (r + a) % m
		}
		a = (a + a) % m
		b >>= 1
	}
	return r
}

func main() {
	const m = 10000000000
	var total uint64
	for i := uint64(1); i <= 2000; i++ {
		p := uint64(1)
		for j := uint64(0); j < i; j++ {
			p = mulmod(p, i, m)
		}
		total = (total + p) % m
	}
	fmt.Printf("%010d\n", total)
}
