{{ "x" | toTOML }}
