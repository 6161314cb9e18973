function histogram(test) {
  const counts = {};
  for (const w of test.split(" ")) if (w) counts[w] = (counts[w] || 0) + 1;
  const most = Math.max(0, ...Object.values(counts));
  const out = {};
  for (const [w, c] of Object.entries(counts)) if (c === most && most > 0) out[w] = c;
  return out;
}
