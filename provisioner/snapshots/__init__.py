"""Whole-guest disk snapshots of a domain, kept in its workspace (docs/snapshots.md)."""
