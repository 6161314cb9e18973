package main

import (
	"container/heap"
	"fmt"
)

type item struct{ d, r, c int }
type pq []item

func (q pq) Len() int            { return len(q) }
func (q pq) Less(i, j int) bool  { return q[i].d < q[j].d }
func (q pq) Swap(i, j int)       { q[i], q[j] = q[j], q[i] }
func (q *pq) Push(x interface{}) { *q = append(*q, x.(item)) }
func (q *pq) Pop() interface{} {
	old := *q
	it := old[len(old)-1]
	*q = old[:len(old)-1]
	return it
}

func main() {
	const n = 200
	x := uint64(1)
	var grid [n][n]int
	for r := 0; r < n; r++ {
		for c := 0; c < n; c++ {
			x = (1103515245*x + 12345) % (1 << 31)
			grid[r][c] = int(x%100) + 1
		}
	}
	var dist [n][n]int
	for r := range dist {
		for c := range dist[r] {
			dist[r][c] = 1 << 60
		}
	}
	dist[0][0] = grid[0][0]
	q := &pq{{grid[0][0], 0, 0}}
	for q.Len() > 0 {
		it := heap.Pop(q).(item)
		if it.d > dist[it.r][it.c] {
			continue
		}
		for _, dd := range [][2]int{{1, 0}, {-1, 0}, {0, 1}, {0, -1}} {
			nr, nc := it.r+dd[0], it.c+dd[1]
			if nr >= 0 && nr < n && nc >= 0 && nc < n && it.d+grid[nr][nc] < dist[nr][nc] {
				dist[nr][nc] = it.d + grid[nr][nc]
				heap.Push(q, item{dist[nr][nc], nr, nc})
			}
		}
	}
	fmt.Println(dist[n-1][n-1])
}
