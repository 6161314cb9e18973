target = 100000
ways = [1] + [0] * target
for coin in (1, 2, 5, 10, 20, 50, 100, 200):
    for t in range(coin, target + 1):
        ways[t] += ways[t - coin]
print(ways[target])
