{{ $nope = 1 }}
