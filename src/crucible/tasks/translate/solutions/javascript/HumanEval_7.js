function filter_by_substring(strings, substring) {
  return strings.filter((s) => s.includes(substring));
}
