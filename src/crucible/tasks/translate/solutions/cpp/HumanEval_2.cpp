double truncate_number(double number) {
    return number - std::floor(number);
}
