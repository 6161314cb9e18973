n, total, k = 10 ** 12, 0, 1
while k <= n:
    q = n // k
    last = n // q
    total += q * (last - k + 1)
    k = last + 1
print(total)
