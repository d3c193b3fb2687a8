{{ with secret "secret/data/golden" }}[{{ (index .Data.data "nope").b }}] {{ $v := index .Data.data "nope" }}[{{ $v.b }}] [{{ $v.b.c }}]{{ end }}
