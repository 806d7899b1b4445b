"""The aiohttp registry API server (MCP Registry API v0.1 and ToolHive compatibility)."""
