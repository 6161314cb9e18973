let filter_by_prefix (strings : string list) (prefix : string) : string list =
  let m = String.length prefix in
  List.filter (fun s -> String.length s >= m && String.sub s 0 m = prefix) strings
