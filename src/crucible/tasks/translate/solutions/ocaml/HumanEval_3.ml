let below_zero (operations : int list) : bool =
  let rec go balance = function
    | [] -> false
    | op :: rest -> balance + op < 0 || go (balance + op) rest
  in
  go 0 operations
