n, k, survivor = 5_000_000, 3, 0
for m in range(2, n + 1):
    survivor = (survivor + k) % m
print(survivor + 1)
