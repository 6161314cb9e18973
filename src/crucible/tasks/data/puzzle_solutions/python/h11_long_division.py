num, den = 2 ** 100, 3 ** 40
whole, rest = divmod(num, den)
digits = ""
for _ in range(30):
    rest *= 10
    d, rest = divmod(rest, den)
    digits += str(d)
print(f"{whole}.{digits}")
