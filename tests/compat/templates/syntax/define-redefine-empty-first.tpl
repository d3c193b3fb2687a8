{{ define "x" }}  {{ end }}{{ define "x" }}second{{ end }}{{ template "x" }}
