{{ (print 1 }}
