{{ secret "pki-kafka/ca/pem" }}
