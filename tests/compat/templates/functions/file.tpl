{{ file "tests/compat/templates/functions/file-input.txt" }}[{{ file "" }}]
