    public static ArrayList<Long> sum_product(ArrayList<Long> numbers) {
        long sum = 0, product = 1;
        for (long n : numbers) {
            sum += n;
            product *= n;
        }
        return new ArrayList<>(Arrays.asList(sum, product));
    }
