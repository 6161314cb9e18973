term = "1"
for _ in range(29):
    out, i = [], 0
    while i < len(term):
        j = i
        while j < len(term) and term[j] == term[i]:
            j += 1
        out.append(f"{j - i}{term[i]}")
        i = j
    term = "".join(out)
print(len(term))
