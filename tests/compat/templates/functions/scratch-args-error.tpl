{{ scratch.Set "only-one" }}
