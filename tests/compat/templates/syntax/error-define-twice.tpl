{{ define "x" }}first{{ end }}{{ define "x" }}second{{ end }}{{ template "x" }}
