print(" ".join(reversed("the quick brown fox jumps over the lazy dog".split())))
