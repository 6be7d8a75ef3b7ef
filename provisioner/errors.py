"""Errors a user can act on.

Every failure the engine expects is a ProvisionError whose message names what
is wrong and where (file, key, line); the CLI prints it and exits non-zero.
"""


class ProvisionError(Exception):
    """Base class for expected, user-facing failures."""

    exit_code = 1


class InputError(ProvisionError):
    """Bad input: a domain directory, a config key, a name, an archive."""

    exit_code = 2

    def __init__(self, where: str, message: str):
        self.where = where
        self.message = message
        super().__init__(f"{where}: {message}" if where else message)
