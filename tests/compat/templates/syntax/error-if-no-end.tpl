{{if true}}open
