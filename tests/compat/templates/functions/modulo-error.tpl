{{ 1.5 | modulo 2 }}
