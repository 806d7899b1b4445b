"""Kopf handlers and reconcile logic of the MCPRegistry operator."""
