{{ slice 3 0 }}
