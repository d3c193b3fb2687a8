{{ $s := secret "secret/golden" }}{{ with $s }}{{ .Data.data.labels.a }}{{ end }}
