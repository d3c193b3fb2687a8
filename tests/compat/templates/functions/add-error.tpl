{{ "x" | add 1 }}
