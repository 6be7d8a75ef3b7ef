"""Running the engine as systemd services: unit rendering (units.py), installing them (install.py), the CLI (commands.py)."""
