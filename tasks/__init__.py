"""Prefect tasks: one pipeline step each, with its retry, cache and tag policy on the decorator."""
