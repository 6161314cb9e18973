let mean_absolute_deviation (numbers : float list) : float =
  let n = Float.of_int (List.length numbers) in
  let mean = List.fold_left ( +. ) 0.0 numbers /. n in
  List.fold_left (fun acc x -> acc +. Float.abs (x -. mean)) 0.0 numbers /. n
