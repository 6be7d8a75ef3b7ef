"""Nova v2.1: flavors (from configuration), keypairs, servers provisioned by the engine, power actions."""
