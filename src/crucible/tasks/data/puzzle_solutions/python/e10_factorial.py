f = 1
for i in range(2, 31):
    f *= i
print(f)
