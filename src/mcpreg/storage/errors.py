"""Errors raised by the storage layer.

Every message names the object involved and says what a person can do, because the operator copies
these messages into `status.message` and Events. Messages never carry catalogue data or credentials.
"""

from __future__ import annotations


class StorageError(Exception):
    """Base class: anything that went wrong storing or loading a catalogue."""


class StorageConflictError(StorageError):
    """Another writer changed the stored catalogue while this one was writing; nothing was published.

    The caller should re-read and retry (the operator's next sync does exactly that).
    """


class StorageCorruptError(StorageError):
    """What is stored does not form a valid catalogue (bad metadata, a missing or altered part, a
    hash mismatch) even after re-reading; the last good catalogue a reader holds stays in use."""


class StorageTooLargeError(StorageError):
    """The catalogue does not fit the backend even after compression and splitting."""


class StorageAccessError(StorageError):
    """The backend refused access (authentication or authorization), or could not be reached."""
