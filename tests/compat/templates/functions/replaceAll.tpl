{{ "a.b.c" | replaceAll "." "-" }} {{ "aaa" | replaceAll "a" "bb" }} {{ "ab" | replaceAll "" "-" }}
