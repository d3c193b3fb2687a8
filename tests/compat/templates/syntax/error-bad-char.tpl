{{ print 1 § }}
