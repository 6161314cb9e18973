function truncate_number(number_: number): number {
  return number_ - Math.floor(number_);
}
