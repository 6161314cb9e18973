m = 10 ** 10
print(f"{sum(pow(i, i, m) for i in range(1, 2001)) % m:010d}")
