apiVersion: v1
kind: Secret
metadata:
  name: app-credentials
type: Opaque
data:
{{- with secret "secret/data/app/credentials" }}
  username: {{ .Data.data.username | base64Encode }}
  password: {{ .Data.data.password | base64Encode }}
  decoded: {{ .Data.data.password | base64Encode | base64Decode }}
{{- end }}
