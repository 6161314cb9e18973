double mean_absolute_deviation(std::vector<double> numbers) {
    double mean = 0;
    for (double x : numbers) mean += x;
    mean /= numbers.size();
    double dev = 0;
    for (double x : numbers) dev += std::abs(x - mean);
    return dev / numbers.size();
}
