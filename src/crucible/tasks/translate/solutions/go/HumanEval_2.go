func truncate_number(number float64) float64 {
	return number - math.Floor(number)
}
