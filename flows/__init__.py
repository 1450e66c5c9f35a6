"""Prefect flows: each body reads as the story of its pipeline."""
