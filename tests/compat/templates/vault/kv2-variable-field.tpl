{{ $s := secret "secret/golden" }}{{ $s.Data.data.nested.mid.deep }}
