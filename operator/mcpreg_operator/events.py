"""Kubernetes Events about an MCPRegistry: what a person wants to see in `kubectl describe`.

Posting goes through Kopf's event queue, so it never blocks a sync; messages are cut to the size the
API accepts. Callers pass only messages that are safe to show (no secrets ever reach here).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

MAX_MESSAGE = 1024


class EventRecorder:
    def post(self, body: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        if len(message) > MAX_MESSAGE:
            message = message[: MAX_MESSAGE - 1] + "…"
        # Kopf reads only the metadata and kind of what it is given; any mapping of an object does.
        kopf.event(body, type=type_, reason=reason, message=message)  # type: ignore[arg-type]

    def normal(self, body: Mapping[str, Any], reason: str, message: str) -> None:
        self.post(body, "Normal", reason, message)

    def warning(self, body: Mapping[str, Any], reason: str, message: str) -> None:
        self.post(body, "Warning", reason, message)
