function longest(strings: string[]): string | undefined {
  let best: string | undefined = undefined;
  for (const s of strings) {
    if (best === undefined || s.length > best.length) best = s;
  }
  return best;
}
