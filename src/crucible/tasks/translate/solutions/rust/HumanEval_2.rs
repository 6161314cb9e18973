fn truncate_number(number: f64) -> f64 {
    number - number.floor()
}
