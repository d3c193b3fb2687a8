hello {{ .x 
