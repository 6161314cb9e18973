let truncate_number (number : float) : float =
  number -. Float.of_int (int_of_float number)
