package main

import "fmt"

func main() {
	n := 500000
	x := uint64(7)
	const size = 1000001
	tree := make([]int64, size+1)
	var inversions int64
	for seen := 0; seen < n; seen++ {
		x = (1103515245*x + 12345) % (1 << 31)
		v := int(x % 1000000)
		var le int64
		for i := v + 1; i > 0; i -= i & -i {
			le += tree[i]
		}
		inversions += int64(seen) - le
		for i := v + 1; i <= size; i += i & -i {
			tree[i]++
		}
	}
	fmt.Println(inversions)
}
