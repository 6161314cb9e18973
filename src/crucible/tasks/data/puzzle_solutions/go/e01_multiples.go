package main

import "fmt"

func main() {
	s := 0
	for n := 0; n < 10000; n++ {
		if n%3 == 0 || n%7 == 0 {
			s += n
		}
	}
	fmt.Println(s)
}
