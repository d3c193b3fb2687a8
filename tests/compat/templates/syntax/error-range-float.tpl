{{ range 1.5 }}x{{ end }}
