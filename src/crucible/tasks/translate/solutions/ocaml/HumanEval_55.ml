let fib (n : int) : int =
  let rec go a b k = if k = 0 then a else go b (a + b) (k - 1) in
  go 0 1 n
