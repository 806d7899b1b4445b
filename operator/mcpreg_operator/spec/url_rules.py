"""Regular expressions and CEL rules for the URLs a spec names (git repositories, catalogue URLs).

The clients check the same expressions again at the point of use, whatever the CRD admitted.
"""

from __future__ import annotations

from mcpreg_operator.spec.cel import CelRule, cel_matches

URL_USERINFO_RE = r"[A-Za-z][A-Za-z0-9+.-]*://[^/]*@.*"
# scheme://host[:port][/path]; host is a name, an IPv4 address or a bracketed IPv6 address. The path
# may hold anything but spaces and control characters.
URL_SHAPE_RE = r"[a-z]+://[A-Za-z0-9.:\[\]-]+(/[^\x00-\x20\x7f]*)?"
HTTP_URL_SCHEME_RE = r"https?://.*"


def http_url_rules(field: str) -> list[CelRule]:
    """An http(s) URL with a host, no credentials, no spaces or control characters. Whether http://
    may be used is the operator's setting, which no CEL rule can see."""
    return [
        CelRule(
            rule=cel_matches("self", HTTP_URL_SCHEME_RE),
            message=f"{field} must be an https:// (or, where the operator allows it, http://) URL",
            reason="FieldValueInvalid",
        ),
        CelRule(
            rule="!" + cel_matches("self", URL_USERINFO_RE),
            message=(
                f"{field} must not contain credentials; put them in a Secret referenced by auth.secretRef"
            ),
            reason="FieldValueForbidden",
        ),
        CelRule(
            rule=cel_matches("self", URL_SHAPE_RE),
            message=(
                f"{field} must be a URL with a host (optionally :port) and a path "
                "without spaces or control characters"
            ),
            reason="FieldValueInvalid",
        ),
    ]
