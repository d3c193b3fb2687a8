{{ "<a>'x'" | html | js }} {{ "a b" | urlquery | html }}
