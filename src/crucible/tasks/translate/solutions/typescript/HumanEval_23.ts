function strlen(string_: string): number {
  return string_.length;
}
