{{ "{" | parseJSON }}
