{{ with secret "secret/data/golden" }}{{ range .Data.data.empty_list }}x{{ else }}none{{ end }} {{ range .Data.data.nope }}x{{ else }}nil{{ end }}{{ end }}
