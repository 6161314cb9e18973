long strlen(std::string string) {
    return (long)string.size();
}
