from fractions import Fraction

print(sum(Fraction(1, k * k) for k in range(1, 16)))
