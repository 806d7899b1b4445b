"""``spec.signing``: the key the operator signs the served catalogue documents with."""

from __future__ import annotations

from pydantic import Field

from mcpreg_operator.spec.base import ResourceModel, SecretReference

DEFAULT_SIGNING_KEY = "signing.key"
SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"  # noqa: S105 - a pattern for key names, not a secret


class Signing(ResourceModel):
    """Sign every stored catalogue document the API serves whole, cosign-compatible."""

    secret_ref: SecretReference = Field(
        description=(
            "Secret in the MCPRegistry's namespace holding the private key: an unencrypted PEM "
            "(PKCS#8, or SEC1 'EC PRIVATE KEY'), ECDSA P-256 or Ed25519. Only the operator reads it; "
            "the API pods get the signatures and the public key, never the private key. New contents "
            "take effect at the next sync pass (the stored generation is signed again)."
        )
    )
    key: str = Field(
        default=DEFAULT_SIGNING_KEY,
        min_length=1,
        max_length=253,
        pattern=SECRET_KEY_PATTERN,
        description="Key of the Secret's data holding the PEM private key.",
    )
