{{ "-1" | parseUint }}
