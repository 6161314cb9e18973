s = "Programming puzzles are a delightful way to sharpen your algorithmic intuition"
print(sum(c in "aeiouAEIOU" for c in s))
