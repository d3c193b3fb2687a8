{{ define "r" }}{{ template "r" . }}{{ end }}{{ template "r" 1 }}
