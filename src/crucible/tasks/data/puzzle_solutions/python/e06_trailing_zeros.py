n, z = 2025, 0
while n:
    n //= 5
    z += n
print(z)
