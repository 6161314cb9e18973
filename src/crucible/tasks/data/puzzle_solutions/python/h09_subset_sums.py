target = 2525
ways = [1] + [0] * 5050
for k in range(1, 101):
    for t in range(5050, k - 1, -1):
        ways[t] += ways[t - k]
print(ways[target])
