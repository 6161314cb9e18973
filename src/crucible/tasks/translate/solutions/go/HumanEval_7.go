func filter_by_substring(strings_ []string, substring string) []string {
	var out []string
	for _, s := range strings_ {
		if strings.Contains(s, substring) {
			out = append(out, s)
		}
	}
	return out
}
