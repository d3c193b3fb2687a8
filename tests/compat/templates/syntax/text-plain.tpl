plain text, no actions
  indented line
	tab
