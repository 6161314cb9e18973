std::vector<std::string> filter_by_prefix(std::vector<std::string> strings, std::string prefix) {
    std::vector<std::string> out;
    for (const auto& s : strings)
        if (s.rfind(prefix, 0) == 0) out.push_back(s);
    return out;
}
