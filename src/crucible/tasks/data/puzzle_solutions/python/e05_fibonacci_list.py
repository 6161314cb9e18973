a, b, out = 0, 1, []
for _ in range(20):
    out.append(a)
    a, b = b, a + b
print(",".join(map(str, out)))
