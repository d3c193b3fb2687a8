{{ print 1) }}
