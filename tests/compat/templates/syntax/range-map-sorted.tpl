{{ with secret "secret/data/golden" }}{{ range $k, $v := .Data.data.labels }}{{ $k }}={{ $v }};{{ end }}{{ end }}
