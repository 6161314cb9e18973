function filter_by_substring(strings: string[], substring: string): string[] {
  return strings.filter((s) => s.includes(substring));
}
