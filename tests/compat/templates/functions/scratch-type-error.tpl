{{ scratch.Get 1 }}
