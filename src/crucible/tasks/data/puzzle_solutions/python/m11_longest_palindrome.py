s = "forgeeksskeegforabacdfgdcabaracecarxyzzyxwvutsrqponmlkjihgfedcba"
best = ""
for center in range(2 * len(s) - 1):
    lo, hi = center // 2, center // 2 + center % 2
    while lo >= 0 and hi < len(s) and s[lo] == s[hi]:
        lo, hi = lo - 1, hi + 1
    if hi - lo - 1 > len(best):
        best = s[lo + 1:hi]
print(best)
