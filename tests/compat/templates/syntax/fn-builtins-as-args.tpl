{{ print (not false) (len "ab") (and 1 2) }}
