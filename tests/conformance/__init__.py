"""The conformance tier: OpenStack's Tempest, unmodified, against `provision serve` on 127.0.0.1.

A package (like tests/e2e/) so its modules are `conformance.*` for the test and
for bench/conformance.py alike.
"""
