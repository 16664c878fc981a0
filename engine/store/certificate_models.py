"""E-certificate models (filled in by the certificates module)."""
