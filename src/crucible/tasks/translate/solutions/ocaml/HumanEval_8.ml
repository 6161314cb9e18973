let sum_product (numbers : int list) : int * int =
  (List.fold_left ( + ) 0 numbers, List.fold_left ( * ) 1 numbers)
