let flip_case (string : string) : string =
  String.map
    (fun c ->
      if c >= 'A' && c <= 'Z' then Char.lowercase_ascii c
      else if c >= 'a' && c <= 'z' then Char.uppercase_ascii c
      else c)
    string
