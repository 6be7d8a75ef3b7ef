"""Keystone v3: version discovery, password tokens (HMAC-signed, expiring, revocable), projects and users; failed logins throttled."""
