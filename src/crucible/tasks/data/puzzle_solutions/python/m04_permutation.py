from math import factorial

items, k, out = list("abcdefghij"), 500000 - 1, ""
while items:
    f = factorial(len(items) - 1)
    out += items.pop(k // f)
    k %= f
print(out)
