[{{ env "PKI_SIDECAR_COMPAT_UNSET" }}] {{ envOrDefault "PKI_SIDECAR_COMPAT_UNSET" "fallback" }}
