{{ "hello world?>" | base64Encode }}
{{ "aGVsbG8gd29ybGQ/Pg==" | base64Decode }}
{{ "hello world?>" | base64URLEncode }}
{{ "aGVsbG8gd29ybGQ_Pg==" | base64URLDecode }}
{{ with secret "secret/data/golden" }}{{ .Data.data.cert | base64Encode | base64Decode }}{{ end }}
