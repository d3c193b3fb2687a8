{{ "x" | regexMatch "[a-" }}
