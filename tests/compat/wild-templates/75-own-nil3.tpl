{{ define "x" }}[{{ . }}]{{ if . }}yes{{ else }}no{{ end }}{{ end }}c{{ template "x" }}d{{ template "x" (env "NOPE_NOT_SET") }}e{{ template "x" (secret "secret/data/nope") }}
