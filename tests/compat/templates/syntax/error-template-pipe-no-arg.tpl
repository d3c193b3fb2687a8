{{ template "x" | printf "%s" }}
