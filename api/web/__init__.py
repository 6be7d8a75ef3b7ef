"""The web status page: server-rendered HTML over the API's stores, behind a login with an API user (docs/web.md)."""
