    public static ArrayList<String> filter_by_prefix(ArrayList<String> strings, String prefix) {
        return strings.stream().filter(s -> s.startsWith(prefix)).collect(Collectors.toCollection(ArrayList::new));
    }
