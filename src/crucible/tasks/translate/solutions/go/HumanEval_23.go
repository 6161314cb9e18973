func strlen(string_ string) int {
	return len([]rune(string_))
}
