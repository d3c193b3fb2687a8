{{ "-42" | parseInt }} {{ "" | parseInt }} {{ "42" | parseInt | add 1 }}
