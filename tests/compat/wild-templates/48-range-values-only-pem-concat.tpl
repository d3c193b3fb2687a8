{{- with secret "kv/data/database/certs/ca" -}}
            {{- range $k, $v := .Data.data -}}
                {{- $v -}}
            {{- end -}}
          {{- end -}}
