{{ print (printf "%d" (len (print "abc"))) }}
