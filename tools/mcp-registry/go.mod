// Pins the official MCP registry's module for its OpenAPI document (docs/reference/api/openapi.yaml), the
// contract the registry API is tested against (mcpreg_dev.officialspec). Nothing is built from it.
// v1.8.9 is the newest release the Go module proxy lists, and it holds the document.
module mcpregistry.dev/tools/mcp-registry

go 1.26.0

require github.com/modelcontextprotocol/registry v1.8.9
