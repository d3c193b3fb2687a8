{{ 1 | call }}
