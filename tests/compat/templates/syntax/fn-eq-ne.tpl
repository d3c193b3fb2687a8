{{ eq 1 1 }} {{ eq 1 2 3 1 }} {{ eq "a" "b" }} {{ ne 1 2 }} {{ ne "a" "a" }} {{ eq true true }}
