{{ "x" | indent -1 }}
