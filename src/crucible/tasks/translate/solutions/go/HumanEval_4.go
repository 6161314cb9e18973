func mean_absolute_deviation(numbers []float64) float64 {
	mean := 0.0
	for _, x := range numbers {
		mean += x
	}
	mean /= float64(len(numbers))
	dev := 0.0
	for _, x := range numbers {
		dev += math.Abs(x - mean)
	}
	return dev / float64(len(numbers))
}
