std::optional<std::string> longest(std::vector<std::string> strings) {
    std::optional<std::string> best;
    for (const auto& s : strings)
        if (!best || s.size() > best->size()) best = s;
    return best;
}
