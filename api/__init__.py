"""The OpenStack-compatible API: Keystone, Nova, Glance and Neutron over the provisioning engine.

One package per service (identity, compute, image, network), each split into
routes (URLs), resources (falcon request handling) and a store (SQLite under
the root). `api.app.create_app` builds the WSGI app; `python -m api serve` runs it.
"""
