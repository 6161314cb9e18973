function unique(l: number[]): number[] {
  return Array.from(new Set(l)).sort((a, b) => a - b);
}
