{{ "a,b,c" | split "," | join ";" }}
[{{ "" | split "," | join "-" }}]
