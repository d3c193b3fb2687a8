{{ "a" | printf "%s-b" | printf "%s-c" | len }}
