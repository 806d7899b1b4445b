"""Subcommands of the `mcpreg` CLI, one module per group."""
