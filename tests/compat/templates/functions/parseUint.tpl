{{ "42" | parseUint }} {{ "" | parseUint }}
