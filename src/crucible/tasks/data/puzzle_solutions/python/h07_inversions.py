n = 500_000
x, values = 7, []
for _ in range(n):
    x = (1103515245 * x + 12345) % 2 ** 31
    values.append(x % 1_000_000)
size = 1_000_001
tree = [0] * (size + 1)
inversions = 0
for seen, v in enumerate(values):
    i, le = v + 1, 0
    while i > 0:
        le += tree[i]
        i -= i & -i
    inversions += seen - le
    i = v + 1
    while i <= size:
        tree[i] += 1
        i += i & -i
print(inversions)
