function longest(strings) {
  let best = undefined;
  for (const s of strings) {
    if (best === undefined || s.length > best.length) best = s;
  }
  return best;
}
