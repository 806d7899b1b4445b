"""Errors a catalogue source reports, classified so status can name the cause and a person can act."""

from __future__ import annotations

from enum import StrEnum


class SourceErrorKind(StrEnum):
    """Each kind maps to a condition reason in status."""

    UNREACHABLE = "SourceUnreachable"
    AUTHENTICATION = "AuthenticationFailed"
    NOT_FOUND = "SourceNotFound"
    TOO_LARGE = "SourceTooLarge"
    INVALID_REFERENCE = "InvalidSourceReference"
    # The revision's signature is missing, bad, or by a key the registry does not trust.
    UNVERIFIED = "SourceVerificationFailed"


class SourceError(Exception):
    """The source could not be read. `message` is safe to show: it never holds a secret."""

    def __init__(self, kind: SourceErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
