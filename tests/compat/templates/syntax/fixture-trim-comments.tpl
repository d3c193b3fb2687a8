start
{{- /* a trimmed comment */ -}}
  after both trims
{{/* untrimmed comment */}}
line {{- /* left only */}} mid {{/* right only */ -}}   end
{{- if true }}
  yes
{{- else }}
  no
{{- end }}
{{ if false -}}
  no
{{- else -}}
  else branch trimmed
{{- end }}
a {{- "b" -}} c
x	{{- 1 }}	{{- -2 }}	{{-3}}
{{ "kept" }}   {{- "" }}
tabs and CRs:	
	{{- "t" -}}	
	done
{{ with secret "secret/data/golden" -}}
  {{ .Data.data.name -}}
{{ end -}}
{{- /* trailing */ -}}

