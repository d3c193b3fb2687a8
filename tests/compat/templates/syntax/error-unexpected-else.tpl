a{{else}}
