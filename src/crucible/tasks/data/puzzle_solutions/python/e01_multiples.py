print(sum(n for n in range(10000) if n % 3 == 0 or n % 7 == 0))
