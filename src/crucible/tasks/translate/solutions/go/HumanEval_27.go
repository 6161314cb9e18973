func flip_case(string_ string) string {
	out := []rune{}
	for _, c := range string_ {
		if unicode.IsUpper(c) {
			out = append(out, unicode.ToLower(c))
		} else {
			out = append(out, unicode.ToUpper(c))
		}
	}
	return string(out)
}
