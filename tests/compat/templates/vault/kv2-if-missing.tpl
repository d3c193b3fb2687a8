{{ with secret "secret/golden" }}{{ if .Data.data.missing }}yes{{ else }}no{{ end }} {{ if .Data.data.enabled }}on{{ end }}{{ end }}
