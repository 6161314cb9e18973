let filter_by_substring (strings : string list) (substring : string) : string list =
  let contains s =
    let n, m = String.length s, String.length substring in
    let rec at i = i + m <= n && (String.sub s i m = substring || at (i + 1)) in
    at 0
  in
  List.filter contains strings
