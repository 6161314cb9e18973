function flip_case(string_: string): string {
  let out = "";
  for (const c of string_) out += c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase();
  return out;
}
