function filter_by_prefix(strings, prefix) {
  return strings.filter((s) => s.startsWith(prefix));
}
