{{ file "tests/compat/templates/functions/no-such-file.txt" }}
