{{if}}a{{end}}
