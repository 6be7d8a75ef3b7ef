"""Site backups: `make backup` on the guest through the post-boot queue, versions kept under
`<root>/backups/<domain>/`, and restoring one as a domain's data.tar.gz (docs/backups.md)."""
