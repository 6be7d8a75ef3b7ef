"""What every service's routes are built from."""

from __future__ import annotations

from dataclasses import dataclass

from api.config import ApiConfig
from api.db import Database
from api.engine import Engine
from api.identity.tokens import TokenSigner
from provisioner.layout import Layout


@dataclass(frozen=True)
class ApiContext:
    """The root, the configuration, the token signer, the database and the engine adapter."""

    layout: Layout
    config: ApiConfig
    signer: TokenSigner
    db: Database
    engine: Engine
