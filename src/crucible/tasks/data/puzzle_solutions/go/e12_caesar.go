package main

import "fmt"

func main() {
	s := []byte("Wkh vhfuhw phhwlqj lv dw qrrq")
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z':
			s[i] = 'a' + (c-'a'+23)%26
		case c >= 'A' && c <= 'Z':
			s[i] = 'A' + (c-'A'+23)%26
		}
	}
	fmt.Println(string(s))
}
