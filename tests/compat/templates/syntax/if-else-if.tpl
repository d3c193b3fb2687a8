{{ with secret "secret/data/golden" }}{{ if eq .Data.data.name "x" }}x{{ else if eq .Data.data.name "golden" }}golden{{ else }}other{{ end }}{{ end }}
