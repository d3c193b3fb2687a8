{{ "a,b,c" | split "," }} {{ split "," "" | len }} {{ " x y " | split " " }} {{ "abc" | split "" }}
