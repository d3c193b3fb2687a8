a  {{- /* trimmed */ -}}  b
 x {{- /* left only */}} y
