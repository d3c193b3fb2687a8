{{ with secret "secret/golden" }}[{{ .LeaseID }}] {{ .LeaseDuration }} {{ .Renewable }} {{ .Warnings }}{{ end }}
