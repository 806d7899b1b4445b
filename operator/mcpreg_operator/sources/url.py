"""`source.type: url`: one catalogue document over HTTPS, checked with a conditional GET.

`revision()` sends If-None-Match / If-Modified-Since from what the last 200 answer said, so an
unchanged document costs one small request answered 304. A 200 answer's body is kept on the object
for `fetch()` of the same pass, so a change costs one download, not two. The revision is the ETag when
the server gives one, else the sha256 of the body. The validators live in a process-wide cache keyed by
(namespace, registry, URL), as each pass builds a new source; after a restart the cache is empty and
the first pass downloads once (and, when the revision matches status, stores nothing).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import ssl
from dataclasses import dataclass, field

from yarl import URL

from mcpreg.kube import CONFIGMAPS, KubeClient
from mcpreg.lru import LruCache
from mcpreg_operator.sources.blob_signatures import check_detached_signature, trusted_public_keys
from mcpreg_operator.sources.errors import SourceError, SourceErrorKind
from mcpreg_operator.sources.factory import config_map_value, read_object, read_secret
from mcpreg_operator.sources.url_http import (
    Answer,
    Request,
    UrlPolicy,
    Validators,
    check_url,
    client_session,
    display,
    get,
    ssl_context,
)
from mcpreg_operator.spec.source_url import CaBundle, UrlAuth, UrlSource
from mcpreg_operator.sync import SourceSnapshot

SIGNATURE_MAX_BYTES = 64 * 1024
_CACHE_SIZE = 4096
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# Headers the operator sets itself, or that would change what the request means.
_RESERVED_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "if-none-match", "if-modified-since"}
)


class ValidatorCache(LruCache[tuple[str, str, str], Validators]):
    """The validators of the last 200 answer per (namespace, registry, URL); least recently used go
    first past a few thousand entries, so deleted registries do not pile up."""

    def __init__(self, size: int = _CACHE_SIZE) -> None:
        super().__init__(size)


VALIDATORS = ValidatorCache()


def credential_headers(data: dict[str, bytes], origin: str) -> dict[str, str]:
    """Request headers from a Secret: token (Bearer), or username+password (basic), plus `headers`."""
    try:
        text = {key: value.decode("utf-8").strip() for key, value in data.items()}
    except UnicodeDecodeError:
        raise SourceError(
            SourceErrorKind.AUTHENTICATION, f"{origin} holds a value that is not UTF-8 text"
        ) from None
    headers: dict[str, str] = {}
    for number, line in enumerate(text.get("headers", "").splitlines(), start=1):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        name = name.strip()
        if not sep or _HEADER_NAME.fullmatch(name) is None or name.lower() in _RESERVED_HEADERS:
            raise SourceError(
                SourceErrorKind.AUTHENTICATION,
                f"{origin} key 'headers' line {number} is not 'Name: value' with a header name the operator "
                "may send",
            )
        headers[name] = value.strip()
    if text.get("token"):
        headers["Authorization"] = f"Bearer {text['token']}"
    elif text.get("username") and text.get("password"):
        pair = f"{text['username']}:{text['password']}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
    if not headers:
        raise SourceError(
            SourceErrorKind.AUTHENTICATION,
            f"{origin} must hold key token, or keys username and password, or key headers",
        )
    return headers


async def load_auth_headers(
    kube: KubeClient, namespace: str, auth: UrlAuth | None, prefix: str
) -> tuple[dict[str, str], str]:
    """The request headers of `<prefix>.auth` and where they came from ("Secret ns/name", for messages
    that must name the credentials without showing them); ({}, "") without auth."""
    if auth is None:
        return {}, ""
    name = auth.secret_ref.name
    origin = f"Secret {namespace}/{name}"
    data = await read_secret(
        kube, namespace, name, f"{prefix}.auth.secretRef", SourceErrorKind.AUTHENTICATION
    )
    return credential_headers(data, origin), origin


async def load_ca_pem(kube: KubeClient, namespace: str, bundle: CaBundle | None, prefix: str) -> str | None:
    """The PEM certificates `<prefix>.caBundle` names, from a Secret or a ConfigMap key."""
    if bundle is None:
        return None
    if bundle.secret_ref is not None:
        ref, field_name = bundle.secret_ref, f"{prefix}.caBundle.secretRef"
        data = await read_secret(kube, namespace, ref.name, field_name, SourceErrorKind.INVALID_REFERENCE)
        where = f"Secret {namespace}/{ref.name}"
        value = data.get(ref.key)
    else:
        assert bundle.config_map_ref is not None  # the CRD requires exactly one
        ref = bundle.config_map_ref
        where = f"ConfigMap {namespace}/{ref.name}"
        config_map = await read_object(
            kube,
            CONFIGMAPS,
            namespace,
            ref.name,
            field=f"{prefix}.caBundle.configMapRef.name",
            what=f"{where} (caBundle)",
            kind=SourceErrorKind.INVALID_REFERENCE,
        )
        value = config_map_value(config_map, ref.key)
    pem = (value or b"").decode("utf-8", errors="replace")
    if "-----BEGIN CERTIFICATE-----" not in pem:
        detail = f"has no key {ref.key!r}" if value is None else f"key {ref.key!r} holds no PEM certificate"
        raise SourceError(SourceErrorKind.INVALID_REFERENCE, f"{where} {detail} (caBundle)")
    return pem


async def trust_context(
    kube: KubeClient, namespace: str, bundle: CaBundle | None, prefix: str
) -> ssl.SSLContext:
    """The TLS trust `<prefix>.caBundle` asks for (the system's CAs without one), built off the loop."""
    pem = await load_ca_pem(kube, namespace, bundle, prefix)
    try:
        return await asyncio.to_thread(ssl_context, pem)
    except Exception as exc:  # ssl.SSLError: PEM that is not a certificate
        raise SourceError(
            SourceErrorKind.INVALID_REFERENCE, f"{prefix}.caBundle cannot be used: {type(exc).__name__}"
        ) from None


def revision_of(answer: Answer) -> str:
    assert answer.body is not None
    return answer.etag or "sha256:" + hashlib.sha256(answer.body).hexdigest()


@dataclass
class UrlCatalogSource:
    spec: UrlSource
    namespace: str
    registry: str
    kube: KubeClient
    policy: UrlPolicy = field(default_factory=UrlPolicy.from_environment)
    cache: ValidatorCache = field(default_factory=lambda: VALIDATORS)
    # The body of a 200 answer to revision(), for fetch() of the same pass.
    _pending: tuple[str, bytes] | None = field(default=None, init=False, repr=False)

    @property
    def _url(self) -> URL:
        return URL(self.spec.url, encoded=True)

    def describe(self) -> str:
        return f"URL {display(self._url)}"

    def _key(self) -> tuple[str, str, str]:
        return (self.namespace, self.registry, self.spec.url)

    async def _credentials(self) -> tuple[dict[str, str], str]:
        return await load_auth_headers(self.kube, self.namespace, self.spec.auth, "source.url")

    async def _get(self, url: URL, what: str, max_bytes: int, conditional: dict[str, str]) -> Answer:
        check_url(
            url, self.policy, field="source.url.url" if what == "the catalogue" else "the signature URL"
        )
        credentials, origin = await self._credentials()
        if (url.scheme, url.host, url.port) != (self._url.scheme, self._url.host, self._url.port):
            credentials = {}  # the signature elsewhere: the document's credentials stay with its host
        context = await trust_context(self.kube, self.namespace, self.spec.ca_bundle, "source.url")
        request = Request(
            url=url,
            what=what,
            max_bytes=max_bytes,
            timeout_s=self.spec.timeout_seconds,
            redirects=self.spec.redirects,
            credentials=credentials,
            credentials_origin=origin,
            conditional=conditional,
            limit_field="source.url.maxBytes" if what == "the catalogue" else "a signature's size limit",
        )
        async with client_session(context) as session:
            return await get(session, request, self.policy)

    def _remember(self, answer: Answer) -> str:
        assert answer.body is not None
        revision = revision_of(answer)
        self.cache.put(self._key(), Validators(answer.etag, answer.last_modified, revision))
        return revision

    async def revision(self) -> str:
        known = self.cache.get(self._key())
        answer = await self._get(
            self._url, "the catalogue", self.spec.max_bytes, known.headers() if known else {}
        )
        if answer.status == 304 and known is not None:
            return known.revision
        assert answer.body is not None
        revision = self._remember(answer)
        self._pending = (revision, answer.body)
        return revision

    async def fetch(self) -> SourceSnapshot:
        if self._pending is not None:
            revision, body = self._pending
            self._pending = None
        else:  # revision() was answered 304, yet the sync needs the data (a spec change, a failed sync)
            answer = await self._get(self._url, "the catalogue", self.spec.max_bytes, {})
            assert answer.body is not None
            revision, body = self._remember(answer), answer.body
        if self.spec.verify is not None:
            await self._verify(body, revision)
        return SourceSnapshot(revision=revision, data=body, description=self.describe())

    async def _verify(self, body: bytes, revision: str) -> None:
        """The document's detached signature must verify with one of the trusted keys, before parsing."""
        assert self.spec.verify is not None
        name = self.spec.verify.secret_ref.name
        secret = await read_secret(
            self.kube, self.namespace, name, "source.url.verify.secretRef", SourceErrorKind.UNVERIFIED
        )
        keys = trusted_public_keys(secret, f"Secret {self.namespace}/{name}")
        location = URL(self.spec.signature_location, encoded=True)
        where = f"{self.describe()} (revision {revision})"
        try:
            answer = await self._get(location, "the signature", SIGNATURE_MAX_BYTES, {})
        except SourceError as exc:
            if exc.kind is SourceErrorKind.NOT_FOUND:
                raise SourceError(
                    SourceErrorKind.UNVERIFIED,
                    f"{where} is not signed: {exc.message} (publish the output of `cosign sign-blob` there, "
                    "or name it in source.url.verify.signatureUrl)",
                ) from None
            raise
        assert answer.body is not None
        check_detached_signature(
            body, answer.body, keys, what=where, origin=f"Secret {self.namespace}/{name}"
        )
