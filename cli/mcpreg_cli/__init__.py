"""The `mcpreg` command line, the top layer: it imports the operator and the API server.

Nothing imports it."""
