print(len({a ** b for a in range(2, 61) for b in range(2, 61)}))
