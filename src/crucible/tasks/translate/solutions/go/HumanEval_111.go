func histogram(test string) map[string]int {
	counts := map[string]int{}
	most := 0
	for _, w := range strings.Fields(test) {
		counts[w]++
		if counts[w] > most {
			most = counts[w]
		}
	}
	out := map[string]int{}
	for w, c := range counts {
		if c == most {
			out[w] = c
		}
	}
	return out
}
