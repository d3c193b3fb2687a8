{{- with secret "kv/data/nomad-cluster/testnet/genesis" -}}
{{.Data.data | toJSON }}
{{- end -}}
