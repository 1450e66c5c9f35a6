"""Prefect tasks: one pipeline step each, with its retry and cache policy on the decorator.

No task carries tags: Prefect 3.9.1 takes and gives back a tag-concurrency slot through the API around every
run of a tagged task, limit or not (`prefect/task_engine.py`), two more database writes per task run that the
embedded server's SQLite answers with 503 "database is locked" when runs are made at once.
"""
