print(sum(str(n) == str(n)[::-1] for n in range(1, 100001)))
