# Copyright (c) HashiCorp, Inc.
# SPDX-License-Identifier: MPL-2.0

vault_addr="http://127.0.0.1:8200"
ssh_mount_point="ssh"
