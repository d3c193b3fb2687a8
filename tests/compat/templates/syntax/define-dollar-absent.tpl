{{ define "y" }}[{{ $.a }}][{{ $ }}]{{ end }}{{ template "y" }}
