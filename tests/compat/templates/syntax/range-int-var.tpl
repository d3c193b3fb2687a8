{{ range $i := 3 }}<{{ $i }}>{{ end }}
