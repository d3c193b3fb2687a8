{{ block "a" . }}{{ block "b" . }}B{{ end }}A{{ end }}|{{ template "b" }}
