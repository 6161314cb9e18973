s = "Wkh vhfuhw phhwlqj lv dw qrrq"
print("".join(chr((ord(c) - base - 3) % 26 + base) if c.isalpha() else c
              for c in s for base in [ord("A") if c.isupper() else ord("a")]))
