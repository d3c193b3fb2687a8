{{ with secret "secret/data/golden" }}{{ $s := .Data }}{{ $s.data.name }} {{ $s.data.nested.mid.deep }}{{ end }}
