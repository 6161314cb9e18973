package main

import "fmt"

func main() {
	items := []byte("abcdefghij")
	k := 500000 - 1
	out := []byte{}
	for len(items) > 0 {
		f := 1
		for i := 2; i < len(items); i++ {
			f *= i
		}
		idx := k / f
		out = append(out, items[idx])
		items = append(items[:idx], items[idx+1:]...)
		k %= f
	}
	fmt.Println(string(out))
}
