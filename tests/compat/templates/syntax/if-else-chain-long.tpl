{{if false}}1{{else if false}}2{{else if 0}}3{{else if "x"}}4{{else}}5{{end}}
