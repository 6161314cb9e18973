let rec greatest_common_divisor (a : int) (b : int) : int =
  if b = 0 then abs a else greatest_common_divisor b (a mod b)
