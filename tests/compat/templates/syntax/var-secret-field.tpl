{{ $s := secret "secret/data/golden" }}{{ $s.Data.data.name }} {{ $s.Data.data.count }}
