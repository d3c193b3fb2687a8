[{{ secret }}]
