{{ with secret "secret/data/golden" }}{{ .Data.data.nested | toJSONPretty }}
{{ .Data.data.empty_list | toJSONPretty }} {{ .Data.data.empty_map | toJSONPretty }}{{ end }}
