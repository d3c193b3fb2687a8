# The proxy forwards to the app's port; the app (here the image's hello-world role) listens
# there, on loopback only, so nothing reaches it around the proxy.
proxy {
  upstream = "http://127.0.0.1:8080"
}

app {
  listen = "127.0.0.1:8080"
}
