template_config {
  exit_on_retry_failure = true
  static_secret_render_interval = "10m"
}
