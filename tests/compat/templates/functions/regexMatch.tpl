{{ "foo.example.com" | regexMatch "^[a-z]+\\.example\\.com$" }} {{ "FOO" | regexMatch "^[a-z]+$" }} {{ "FOO" | regexMatch "(?i)^[a-z]+$" }}
