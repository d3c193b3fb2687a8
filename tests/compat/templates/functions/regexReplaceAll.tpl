{{ "foo-bar-123" | regexReplaceAll "[0-9]+" "N" }} {{ "a1b22" | regexReplaceAll "([a-z])([0-9]+)" "${2}$1" }} {{ "abc" | regexReplaceAll "" "-" }}
