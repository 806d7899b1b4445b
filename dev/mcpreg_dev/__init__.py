"""Local development and test environment: control plane, git servers."""
