{{ not true }} {{ not 0 }} {{ not "" }} {{ not "x" }}
