"""Pure rendering: DomainSpec (+ keys) -> files. Same input, byte-identical output.

domain.render_domain renders a domain workspace; record tells whether the
last render still holds, without importing the renderers.
"""
