{{ "yes" | parseBool }}
