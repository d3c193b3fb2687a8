{{ with secret "secret/golden" }}{{ .Data.data.nested | toJSONPretty }}{{ end }}
