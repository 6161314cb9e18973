std::vector<std::string> filter_by_substring(std::vector<std::string> strings, std::string substring) {
    std::vector<std::string> out;
    for (const auto& s : strings)
        if (s.find(substring) != std::string::npos) out.push_back(s);
    return out;
}
