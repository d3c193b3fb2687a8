{{ define "b" }}{{ end }}{{ block "b" "x" }}default {{ . }}{{ end }} {{ template "b" "y" }}
