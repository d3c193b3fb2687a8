a{{/* a comment */}}b
{{/* multi
line
comment */}}c
