{{ with secret "secret/data/golden" }}{{ with $x := .Data.data.name }}{{ $x }}/{{ . }}{{ end }}{{ end }}
