      {{ with secret "secret/data/ssh_keys/ansible" }}
      {{ index .Data.data "id_rsa.pub" }}
    {{ end }}
