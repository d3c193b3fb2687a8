{{ call .x }}
