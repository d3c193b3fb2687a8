{{- with secret "secret/data/app/printf" -}}
q={{ printf "%q" .Data.data.user }}
v={{ printf "%v" .Data.data }}
s={{ printf "%s" .Data.data.user }}
plusv={{ printf "%+v" .Data.data }}
list={{ printf "%v" (split "," "a,b,c") }}
qlist={{ printf "%q" (split "," "a,b,c") }}
{{- end }}
