function histogram(test: string): {[key: string]: number} {
  const counts: {[key: string]: number} = {};
  for (const w of test.split(" ")) if (w) counts[w] = (counts[w] || 0) + 1;
  const most = Math.max(0, ...Object.values(counts));
  const out: {[key: string]: number} = {};
  for (const w of Object.keys(counts)) if (most > 0 && counts[w] === most) out[w] = most;
  return out;
}
