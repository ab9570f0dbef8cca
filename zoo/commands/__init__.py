"""Subcommands of the ``zoo`` command, one module per group."""
