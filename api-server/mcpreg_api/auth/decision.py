"""What a review decided about one token: the pure part of the Kubernetes mode, tested on its own.

`from_token_review` and `from_access_review` read the `status` the API server answered; a review the
API server refused or answered oddly is not a decision about the caller (it raises ReviewFailed and is
answered 503, never cached).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Outcome = Literal["allowed", "unauthenticated", "forbidden"]


class ReviewFailed(Exception):
    """The Kubernetes API server could not decide (unreachable, refused the review, odd answer)."""


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a token belongs to, as the API server's authenticator says."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    caller: Caller | None = None  # known unless unauthenticated
    reason: str = ""  # for the caller: why not (never the API server's internals)
    expires_at: float | None = None  # Unix time after which the decision must not be reused (the token's exp)

    @property
    def subject(self) -> str | None:
        return self.caller.username if self.caller is not None else None


MALFORMED = Decision("unauthenticated", reason="the bearer token is malformed")


def from_token_review(status: Any, audience: str) -> Caller | Decision:
    """The caller a TokenReview's status names, or the 401 decision it amounts to."""
    if not isinstance(status, dict):
        raise ReviewFailed("the TokenReview came back without a status")
    if not status.get("authenticated"):
        # The API server's own error text can name its authenticators; the caller only learns why in
        # general terms (the server log has the rest).
        return Decision("unauthenticated", reason="the token is invalid, expired or not for this registry")
    audiences = status.get("audiences")
    if isinstance(audiences, list) and audience not in audiences:
        # An authenticator that ignores audiences (a static token, a webhook) vouched for it: the token
        # was not issued for this registry.
        return Decision("unauthenticated", reason="the token is not issued for this registry")
    user = status.get("user")
    if not isinstance(user, dict) or not isinstance(user.get("username"), str) or not user["username"]:
        raise ReviewFailed("the TokenReview authenticated a token but named no user")
    extra = user.get("extra")
    if not isinstance(extra, dict):
        extra = {}
    return Caller(
        username=user["username"],
        uid=str(user.get("uid") or ""),
        groups=tuple(str(group) for group in user.get("groups") or ()),
        extra=tuple(sorted((str(key), tuple(str(v) for v in values or ())) for key, values in extra.items())),
    )


def from_access_review(status: Any, caller: Caller, what: str) -> Decision:
    """The decision a SubjectAccessReview's status amounts to for `caller` (`what` they would need)."""
    if not isinstance(status, dict):
        raise ReviewFailed("the SubjectAccessReview came back without a status")
    if status.get("allowed") is True and not status.get("denied"):
        return Decision("allowed", caller)
    return Decision("forbidden", caller, f"{caller.username} may not read this registry: it needs {what}")
