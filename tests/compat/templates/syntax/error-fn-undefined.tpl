{{ nosuchfunction 1 }}
