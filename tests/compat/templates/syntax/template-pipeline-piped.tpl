{{ define "x" }}[{{ . }}]{{ end }}{{ template "x" "a" | printf "%s!" }}
