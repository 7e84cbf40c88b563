"""Heads: one module per architecture, each with a ``build`` the registry points at."""
