{{- with secret "secret/data/app/sprig" -}}
user={{ .Data.data.username | sprig_upper }}
quoted={{ sprig_quote .Data.data.username }}
squoted={{ .Data.data.password | sprig_squote }}
b64={{ .Data.data.password | sprig_b64enc }}
sha={{ .Data.data.password | sprig_sha256sum }}
trunc={{ .Data.data.password | sprig_trunc 5 }}
default={{ sprig_default "fallback" "" }}
list={{ sprig_list .Data.data.username .Data.data.password | sprig_join "," }}
dict={{ sprig_dict "u" .Data.data.username | sprig_toJson }}
{{- end }}
