{{ block "b" "x" }}default {{ . }}{{ end }} {{ define "b" }}override {{ . }}{{ end }}
