{{ "1.2.3" | parseFloat }}
