{{ define "outer" }}<{{ block "inner" . }}in {{ . }}{{ end }}>{{ end }}{{ template "outer" "d" }} {{ template "inner" "e" }}
