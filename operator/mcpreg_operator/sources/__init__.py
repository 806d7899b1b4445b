"""Catalogue sources: where an MCPRegistry reads its data from."""
