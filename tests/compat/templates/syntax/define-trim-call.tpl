{{ define "t" }}[T]{{ end }}a  
  {{- template "t" -}}  
  b
