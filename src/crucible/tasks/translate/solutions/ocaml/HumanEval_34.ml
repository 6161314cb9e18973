let unique (l : int list) : int list =
  List.sort_uniq compare l
