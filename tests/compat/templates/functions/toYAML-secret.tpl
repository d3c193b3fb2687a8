{{ with secret "secret/data/golden" }}{{ .Data.data | toYAML }}{{ end }}
---
{{ sprig_dict "long" "word word word word word word word word word word word word word word word word word word" "tab" "a\tb" "uni" "é ü" "nl" "x\n" "lead" "\n x" "bang" "!x" "pct" "%x" "at" "@x" "amp" "&x" "qm" "? x" "brace" "{x}" "comma" "a, b" "hashend" "a#" "colonend" "a:" "dot" "1.0" "ver" "1.2.3" "time" "12:30" "octal" "0755" "hex" "0x1F" "exp" "1e3" "neg" "-1" "nullw" "null" "tilde2" "~x" | toYAML }}
