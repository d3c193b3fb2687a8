{{ define "a" }}{{ template "b" }}{{ end }}{{ define "b" }}B{{ end }}{{ template "a" }} {{ template "c" "dot" }}{{ define "c" }}{{ . }}{{ end }}
