{{ eq nil nil }} {{ eq 1 nil }} {{ ne nil 1 }} {{ eq .x .y }}
