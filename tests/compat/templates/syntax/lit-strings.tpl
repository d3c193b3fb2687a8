{{ "tab\there" }} {{ "quote\"d" }} {{ "\u00e9\x41\101" }} {{ `raw\n` }}
