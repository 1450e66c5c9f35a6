"""One taxonomy for every way a provider call can fail, read in one place for retry decisions."""

from __future__ import annotations

from enum import StrEnum


class ErrorKind(StrEnum):
    auth = "auth"
    insufficient_credits = "insufficient_credits"
    rate_limited = "rate_limited"
    invalid_input = "invalid_input"
    moderation_input = "moderation_input"
    moderation_output = "moderation_output"
    generation_failed = "generation_failed"
    not_found = "not_found"
    not_configured = "not_configured"
    invalid_output = "invalid_output"  # a language model's answer that would not follow its schema

    @property
    def transient(self) -> bool:
        """Only these are worth retrying as they are; the rest need a different input or a human."""
        return self in (ErrorKind.rate_limited, ErrorKind.generation_failed)


class ProviderError(Exception):
    def __init__(
        self, kind: ErrorKind, message: str, *, provider: str = "", retry_after: float | None = None
    ):
        self.kind = kind
        self.provider = provider
        self.retry_after = retry_after
        self.detail = message
        super().__init__(f"{provider or 'provider'}: {kind.value}: {message}")


class JobFailed(ProviderError):
    """The vendor ended the job without an output (failed, refused, cancelled): vendors do not bill these."""
