[{{ sprig_env "PKI_SIDECAR_COMPAT_UNSET" }}]|{{ sprig_expandenv "a$PKI_SIDECAR_COMPAT_UNSET-${PKI_SIDECAR_COMPAT_UNSET}b$" }}|{{ sprig_expandenv "cost: $$5 ${}" }}
