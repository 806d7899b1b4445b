"""Test-suite wiring: fixtures live in `tests/fixtures/` and are loaded as plugins."""

pytest_plugins = ["fixtures.kube", "fixtures.git_servers", "fixtures.operator", "fixtures.minio"]
