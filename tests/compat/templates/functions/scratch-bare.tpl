pad: {{ scratch }}
