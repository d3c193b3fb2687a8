{{ sprig_add1 1 }}|{{ sprig_add 1 "2" 3.9 }}|{{ sprig_add }}|{{ sprig_sub 1 2 }}|{{ sprig_div 7 2 }}|{{ sprig_mod 7 2 }}|{{ sprig_mul 2 3 4 }}|{{ sprig_max 1 5 3 }}|{{ sprig_biggest 1 "9" }}|{{ sprig_min 4 5 3 }}
{{ sprig_maxf 1 5.5 2 }}|{{ sprig_minf 1.5 0.5 }}|{{ sprig_ceil 1.2 }}|{{ sprig_floor 1.8 }}|{{ sprig_round 1.23556 2 }}|{{ sprig_round 1.5 0 }}|{{ sprig_round 1.45 1 0.6 }}
{{ sprig_until 3 }}|{{ sprig_until -2 }}|{{ sprig_untilStep 0 10 4 }}|{{ sprig_untilStep 10 0 -3 }}|{{ range sprig_until 2 }}{{ . }}{{ end }}
