"""The one error type of the Kubernetes access layer, classified once, here.

Every request the operator or the storage code sends to the API server fails with a `KubeError`
subclass and nothing else: HTTP statuses by the Kubernetes `Status` they carry, transport failures
(refused, reset, timed out) as `KubeUnavailableError`. Callers decide on the class (absent? stale?
retry later?) and never parse status codes themselves. Messages are the API server's own (they name
the object and the verb, never a credential).
"""

from __future__ import annotations

import json


class KubeError(Exception):
    """A request to the Kubernetes API server failed.

    `status` is the HTTP status (None when no answer arrived), `reason` the Status reason
    (`NotFound`, `Conflict`, `Forbidden`, `TooManyRequests`, …, or `Unavailable`), `message` the API
    server's explanation. `retryable` says whether the same request may succeed later unchanged.
    """

    retryable = False

    def __init__(
        self, status: int | None, reason: str, message: str = "", *, retry_after: float | None = None
    ) -> None:
        text = message or reason
        super().__init__(f"{text} (HTTP {status} {reason})" if status is not None else text)
        self.status = status
        self.reason = reason
        self.message = message
        self.retry_after = retry_after


class NotFoundError(KubeError):
    """404: the object (or its namespace) does not exist."""


class ConflictError(KubeError):
    """409: AlreadyExists on create, Conflict on a stale resourceVersion or a failed precondition."""


class GoneError(KubeError):
    """410: the resourceVersion a watch or list continued from is too old."""


class ForbiddenError(KubeError):
    """401 or 403: RBAC (or authentication) refused the request."""


class InvalidError(KubeError):
    """400 or 422: the request or object was refused as malformed or invalid (schema, CEL, quota)."""


class TooManyRequestsError(KubeError):
    """429: the API server is shedding load (priority and fairness); retry after `retry_after`."""

    retryable = True


class ServerError(KubeError):
    """5xx: the API server (or etcd behind it) failed; the request may succeed later."""

    retryable = True


class KubeUnavailableError(KubeError):
    """No answer: the connection was refused, reset or timed out."""

    retryable = True

    def __init__(self, message: str) -> None:
        super().__init__(None, "Unavailable", message)


class BadResponseError(KubeError):
    """The API server answered with something that is not what the API promises."""

    retryable = True


def error_from_response(status: int, body: bytes, fallback_reason: str, retry_after: str | None) -> KubeError:
    """The `KubeError` for an HTTP error answer (`body` is normally a Kubernetes Status)."""
    reason, message = fallback_reason, ""
    try:
        status_obj = json.loads(body)
        if isinstance(status_obj, dict):
            reason = str(status_obj.get("reason") or reason)
            message = str(status_obj.get("message") or "")
    except ValueError:
        pass
    delay: float | None = None
    if retry_after:
        try:
            delay = max(0.0, float(retry_after))
        except ValueError:
            delay = None
    kind: type[KubeError]
    if status == 404:
        kind = NotFoundError
    elif status == 409:
        kind = ConflictError
    elif status == 410:
        kind = GoneError
    elif status in (401, 403):
        kind = ForbiddenError
    elif status in (400, 422):
        kind = InvalidError
    elif status == 429:
        kind = TooManyRequestsError
    elif status >= 500:
        kind = ServerError
    else:
        kind = KubeError
    return kind(status, reason or str(status), message, retry_after=delay)
