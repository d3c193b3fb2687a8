{{ with secret "secret/data/golden" }}[{{ .Data.data.nope }}] [{{ .Data.data.labels.zz }}]{{ end }}
