{{ "f" | call }}
