{{ with $x := secret "secret/data/a" }}{{ $x.Data.data.k }}{{ end }}
