    public static ArrayList<Long> unique(ArrayList<Long> l) {
        return new ArrayList<>(new TreeSet<>(l));
    }
