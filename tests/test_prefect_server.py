"""Which Prefect server a process runs on: one it shares, or the embedded one its command launched."""

from __future__ import annotations

from prefect.settings import PREFECT_API_URL, temporary_settings

from cutroom.prefect_server import EMBEDDED_API, shared_server

TEAM = "http://prefect.team.example:4200/api"
EMBEDDED = "http://127.0.0.1:40111/api"


def test_a_server_set_is_shared(monkeypatch):
    monkeypatch.delenv(EMBEDDED_API, raising=False)
    with temporary_settings({PREFECT_API_URL: TEAM}):
        assert shared_server() == TEAM


def test_the_embedded_server_is_not_shared(monkeypatch):
    monkeypatch.setenv(EMBEDDED_API, EMBEDDED)
    with temporary_settings({PREFECT_API_URL: EMBEDDED}):
        assert shared_server() is None


def test_a_server_set_beside_an_embedded_one_is_shared(monkeypatch):
    # A child of a command on its embedded server, told to use a team's: the team's counts.
    monkeypatch.setenv(EMBEDDED_API, EMBEDDED)
    with temporary_settings({PREFECT_API_URL: TEAM}):
        assert shared_server() == TEAM


def test_no_server_is_not_shared(monkeypatch):
    monkeypatch.delenv(EMBEDDED_API, raising=False)
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        assert shared_server() is None
