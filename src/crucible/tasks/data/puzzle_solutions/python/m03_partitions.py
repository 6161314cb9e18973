n = 250
p = [1] + [0] * n
for part in range(1, n + 1):
    for total in range(part, n + 1):
        p[total] += p[total - part]
print(p[n])
