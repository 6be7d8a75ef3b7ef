"""Keystone v3: version discovery, password tokens (HMAC-signed, expiring), projects and users."""
