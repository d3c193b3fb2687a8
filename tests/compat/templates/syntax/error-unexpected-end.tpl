a{{end}}
