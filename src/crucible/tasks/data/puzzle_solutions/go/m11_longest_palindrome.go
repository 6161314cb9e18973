package main

import "fmt"

func main() {
	s := "forgeeksskeegforabacdfgdcabaracecarxyzzyxwvutsrqponmlkjihgfedcba"
	best := ""
	for center := 0; center < 2*len(s)-1; center++ {
		lo, hi := center/2, center/2+center%2
		for lo >= 0 && hi < len(s) && s[lo] == s[hi] {
			lo, hi = lo-1, hi+1
		}
		if hi-lo-1 > len(best) {
			best = s[lo+1 : hi]
		}
	}
	fmt.Println(best)
}
