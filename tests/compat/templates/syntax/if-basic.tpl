{{if true}}yes{{end}} {{if false}}no{{end}}|{{if 0}}zero{{else}}nonzero-false{{end}}
