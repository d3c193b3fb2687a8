//! The proxy role against real clients: TLS, reload, forwarding, limits.
