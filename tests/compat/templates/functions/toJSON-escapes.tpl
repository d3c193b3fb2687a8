{{ sprig_list "\u2028" "\x01" "\x7f" "é" "\\" "\"" "\b\f" 1e21 1e-7 0.000001 123456789.0 -0.0 | toJSON }}
{{ sprig_list "<" "\x01" | toUnescapedJSON }}
