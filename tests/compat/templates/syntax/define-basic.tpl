{{ define "T1" }}ONE{{ end }}{{ define "T2" }}TWO {{ template "T1" }}{{ end }}{{ template "T2" }}
