{{ range 5 }}{{ . }} {{ end }}
