let longest (strings : string list) : string option =
  List.fold_left
    (fun best s ->
      match best with
      | Some b when String.length b >= String.length s -> best
      | _ -> Some s)
    None strings
