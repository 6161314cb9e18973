    public static HashMap<String, Long> histogram(String test) {
        HashMap<String, Long> counts = new HashMap<>();
        for (String w : test.split(" ")) if (!w.isEmpty()) counts.merge(w, 1L, Long::sum);
        long most = counts.values().stream().mapToLong(Long::longValue).max().orElse(0);
        HashMap<String, Long> out = new HashMap<>();
        for (Map.Entry<String, Long> e : counts.entrySet()) if (e.getValue() == most) out.put(e.getKey(), most);
        return out;
    }
