{{ urlquery "a b&c=d/e?f#g+h~i_j.k-l é" }}
{{ urlquery "x" 1 }} {{ urlquery nil }}
