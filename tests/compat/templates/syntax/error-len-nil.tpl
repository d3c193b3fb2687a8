{{ len .x }}
