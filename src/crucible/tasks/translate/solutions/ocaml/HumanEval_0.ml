let rec has_close_elements (numbers : float list) (threshold : float) : bool =
  match numbers with
  | [] -> false
  | x :: rest -> List.exists (fun y -> Float.abs (x -. y) < threshold) rest || has_close_elements rest threshold
