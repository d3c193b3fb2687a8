{{ define "x" }}{{ . }}|{{ if . }}yes{{ else }}no{{ end }}{{ end }}{{ with secret "secret/data/a" }}{{ $d := .Data.data }}{{ template "x" $d.nokey }}{{ end }}
