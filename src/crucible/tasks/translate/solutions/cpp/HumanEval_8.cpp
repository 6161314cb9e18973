std::tuple<long, long> sum_product(std::vector<long> numbers) {
    long sum = 0, product = 1;
    for (long n : numbers) {
        sum += n;
        product *= n;
    }
    return {sum, product};
}
