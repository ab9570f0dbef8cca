"""Acme conv nets: a small image family registered with zoo through an entry point."""
