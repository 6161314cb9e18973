function truncate_number(number) {
  return number % 1.0;
}
