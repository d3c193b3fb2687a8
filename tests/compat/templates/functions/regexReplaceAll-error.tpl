{{ "x" | regexReplaceAll "(" "y" }}
