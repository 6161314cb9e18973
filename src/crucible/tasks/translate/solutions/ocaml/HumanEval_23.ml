let strlen (string : string) : int =
  String.length string
