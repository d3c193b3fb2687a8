{{ "hello" | printf "%s world" }} {{ "x" | printf "%s-%s" "y" }}
