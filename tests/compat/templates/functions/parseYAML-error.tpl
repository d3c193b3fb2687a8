{{ "a: [" | parseYAML }}
