{{ scratch.Put "a" "b" }}
