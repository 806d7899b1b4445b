"""mcp-registry-operator: the shared catalogue library, storage backends, CLI and dev tooling."""

__version__ = "0.1.0"
