"""The signer of one MCPRegistry: its `spec.signing` key, read from the Secret at each sync pass.

Read afresh each pass (one GET), so new Secret contents sign the next generation and a deleted Secret
fails the sync with a message instead of signing with a key that is gone. The key stays in this
process: the signatures and the public key travel with the stored generation, never the key, and no
message names what the Secret holds.

A KMS signer would be built here too (another `spec.signing` field), behind the same `Signer`.
"""

from __future__ import annotations

import base64
import binascii

from mcpreg.kube import SECRETS, ForbiddenError, KubeClient, KubeError
from mcpreg.signing import PrivateKeySigner, Signer, SigningError
from mcpreg_operator.spec.signing import Signing


class SigningKeyError(Exception):
    """The signing key cannot be had; `reason` is the condition reason, the message says what to do."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


async def load_signer(signing: Signing | None, namespace: str, kube: KubeClient) -> Signer | None:
    """The signer `signing` names (None: the registry is not signed); SigningKeyError otherwise."""
    if signing is None:
        return None
    where = f"Secret {namespace}/{signing.secret_ref.name}"
    try:
        secret = await kube.get(SECRETS, namespace, signing.secret_ref.name)
    except ForbiddenError:
        raise SigningKeyError("SigningKeyForbidden", f"the operator may not read {where} (RBAC)") from None
    except KubeError as exc:
        raise SigningKeyError("SigningKeyUnavailable", f"cannot read {where}: {exc}") from None
    if secret is None:
        raise SigningKeyError(
            "SigningKeyMissing",
            f"{where} (spec.signing.secretRef) does not exist; create it with key {signing.key}",
        )
    encoded = (secret.get("data") or {}).get(signing.key)
    if not encoded:
        raise SigningKeyError("SigningKeyMissing", f"{where} has no key {signing.key!r} (spec.signing.key)")
    try:
        pem = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise SigningKeyError("SigningKeyInvalid", f"{where} key {signing.key!r} is not base64") from None
    try:
        return PrivateKeySigner.from_pem(pem, where=f"{where} key {signing.key!r}")
    except SigningError as exc:
        raise SigningKeyError("SigningKeyInvalid", str(exc)) from None
