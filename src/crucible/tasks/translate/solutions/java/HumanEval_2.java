    public static double truncate_number(double number) {
        return number - Math.floor(number);
    }
