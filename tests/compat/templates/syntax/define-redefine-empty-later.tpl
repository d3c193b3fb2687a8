{{ define "x" }}first{{ end }}{{ define "x" }}{{/* nothing */}}{{ end }}{{ template "x" }}
