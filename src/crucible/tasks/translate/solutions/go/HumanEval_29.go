func filter_by_prefix(strings_ []string, prefix string) []string {
	out := []string{}
	for _, s := range strings_ {
		if strings.HasPrefix(s, prefix) {
			out = append(out, s)
		}
	}
	return out
}
