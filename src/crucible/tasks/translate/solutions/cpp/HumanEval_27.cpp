std::string flip_case(std::string string) {
    for (char& c : string) {
        if (std::isupper((unsigned char)c)) c = std::tolower((unsigned char)c);
        else c = std::toupper((unsigned char)c);
    }
    return string;
}
