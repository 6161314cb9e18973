n = 10 ** 12
root = int(n ** 0.5)
while root * root > n:
    root -= 1
while (root + 1) ** 2 <= n:
    root += 1
mu = [1] * (root + 1)
is_composite = bytearray(root + 1)
for p in range(2, root + 1):
    if not is_composite[p]:
        for m in range(p, root + 1, p):
            is_composite[m] = 1
            mu[m] = -mu[m]
        for m in range(p * p, root + 1, p * p):
            mu[m] = 0
print(sum(mu[d] * (n // (d * d)) for d in range(1, root + 1)))
