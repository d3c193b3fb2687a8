a{{/* never closed }}
