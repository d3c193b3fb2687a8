{{ scratch.Set "s" "text" }}{{ scratch.MapSet "s" "k" "v" }}
