    public static double mean_absolute_deviation(ArrayList<Double> numbers) {
        double mean = 0;
        for (double x : numbers) mean += x;
        mean /= numbers.size();
        double dev = 0;
        for (double x : numbers) dev += Math.abs(x - mean);
        return dev / numbers.size();
    }
