    public static ArrayList<String> filter_by_substring(ArrayList<String> strings, String substring) {
        ArrayList<String> out = new ArrayList<>();
        for (String s : strings) if (s.contains(substring)) out.add(s);
        return out;
    }
