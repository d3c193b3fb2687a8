{{ slice "abc" 0 9 }}
