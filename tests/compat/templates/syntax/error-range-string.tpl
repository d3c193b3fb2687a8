{{ range "ab" }}{{ . }} {{ end }}
