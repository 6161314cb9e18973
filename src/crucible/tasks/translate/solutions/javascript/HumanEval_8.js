function sum_product(numbers) {
  let sum = 0, product = 1;
  for (const n of numbers) {
    sum += n;
    product *= n;
  }
  return [sum, product];
}
