{{ define "up" }}{{ . | toUpper }}{{ end }}{{ executeTemplate "up" "abc" | len }} {{ "xyz" | executeTemplate "up" }}
