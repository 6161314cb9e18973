MOD = 1_000_000_007


def fib(n):  # fast doubling: (F(n), F(n+1))
    if n == 0:
        return 0, 1
    a, b = fib(n // 2)
    c = a * (2 * b - a) % MOD
    d = (a * a + b * b) % MOD
    return (d, (c + d) % MOD) if n % 2 else (c, d)


print(fib(10 ** 18)[0])
