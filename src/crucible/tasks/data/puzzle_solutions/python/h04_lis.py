from bisect import bisect_left

x, tails = 42, []
for _ in range(1_000_000):
    x = (1103515245 * x + 12345) % 2 ** 31
    v = x % 1_000_000
    i = bisect_left(tails, v)
    if i == len(tails):
        tails.append(v)
    else:
        tails[i] = v
print(len(tails))
