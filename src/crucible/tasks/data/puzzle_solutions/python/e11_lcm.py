from math import gcd

l = 1
for i in range(1, 26):
    l = l * i // gcd(l, i)
print(l)
