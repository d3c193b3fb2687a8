{{ range true }}x{{ end }}
