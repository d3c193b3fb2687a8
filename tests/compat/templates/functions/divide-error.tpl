{{ 1 | divide 0 }}
