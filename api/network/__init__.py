"""Neutron v2.0: networks, subnets, ports (derived from servers' NICs), security groups and rules as records."""
