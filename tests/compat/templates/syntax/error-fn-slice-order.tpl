{{ slice "abc" 2 1 }}
