{{ $d := sprig_dict "a" 1 }}{{ $_ := sprig_set $d "b" 2 }}{{ $d }}|{{ $_ := sprig_unset $d "a" }}{{ $d }}
