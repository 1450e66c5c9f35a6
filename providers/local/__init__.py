"""Offline providers: every capability works with no keys and no network."""
