"""One module per CLI command; each command is a plain function returning an exit status."""
