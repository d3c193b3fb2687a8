{{ define "c" }}{{/* only a comment */}}{{ end }}[{{ template "c" }}]
