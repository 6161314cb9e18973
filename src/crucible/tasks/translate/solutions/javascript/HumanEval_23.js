function strlen(string) {
  return string.length;
}
