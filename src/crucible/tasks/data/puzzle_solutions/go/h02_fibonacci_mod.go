package main

import "fmt"

const mod = 1000000007

// fib returns F(n), F(n+1) mod 1e9+7 by fast doubling.
func fib(n uint64) (uint64, uint64) {
	if n == 0 {
		return 0, 1
	}
	a, b := fib(n / 2)
	c := a * ((2*b + mod - a) % mod) % mod
	d := (a*a + b*b) % mod
	if n%2 == 1 {
		return d, (c + d) % mod
	}
	return c, d
}

func main() {
	f, _ := fib(1000000000000000000)
	fmt.Println(f)
}
