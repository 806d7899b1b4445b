"""URL sources' pure rules: the operator's setting, refused addresses and redirects, credentials out of a
Secret, the signature's default location, the validator cache."""

from __future__ import annotations

import asyncio
import base64
import socket

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from mcpreg_operator.sources.errors import SourceError, SourceErrorKind
from mcpreg_operator.sources.factory import build_source
from mcpreg_operator.sources.url import UrlCatalogSource, ValidatorCache, credential_headers
from mcpreg_operator.sources.url_http import (
    GuardedResolver,
    RefusedAddressError,
    Request,
    UrlPolicy,
    Validators,
    _next_url,
    check_url,
    display,
    refused_address,
)
from mcpreg_operator.spec.registry import MCPRegistrySpec
from mcpreg_operator.spec.source_url import RedirectPolicy, UrlSource

ORIGIN = URL("https://catalogue.example.com/registry.json")


def request(redirects: RedirectPolicy = RedirectPolicy.SAME_HOST, url: URL = ORIGIN) -> Request:
    return Request(
        url=url,
        what="the catalogue",
        max_bytes=1024,
        timeout_s=5,
        redirects=redirects,
        credentials={},
        credentials_origin="",
        conditional={},
    )


@pytest.mark.parametrize(
    ("value", "allowed"), [("", False), ("false", False), ("0", False), ("true", True), ("Yes", True)]
)
def test_the_operator_setting_is_a_boolean(value: str, allowed: bool) -> None:
    assert UrlPolicy.parse(value).allow_http is allowed


def test_an_unreadable_setting_is_refused_naming_the_variable() -> None:
    with pytest.raises(ValueError, match="MCPREG_ALLOW_INSECURE_HTTP_SOURCES"):
        UrlPolicy.parse("maybe")


@pytest.mark.parametrize(
    ("host", "refused"),
    [
        ("169.254.169.254", True),
        ("169.254.0.1", True),
        ("fe80::1", True),
        ("[fe80::1%eth0]", True),
        ("::ffff:169.254.169.254", True),
        ("fd00:ec2::254", True),
        ("10.0.0.1", False),
        ("127.0.0.1", False),
        ("::1", False),
        ("catalogue.example.com", False),  # a name: the resolver checks what it resolves to
    ],
)
def test_link_local_addresses_are_refused(host: str, refused: bool) -> None:
    assert refused_address(host) is refused


def test_check_url_refuses_http_unless_allowed_and_link_local_always() -> None:
    plain = URL("http://catalogue.example.com/r.json")
    with pytest.raises(SourceError, match="allowInsecureHttpSources") as caught:
        check_url(plain, UrlPolicy(allow_http=False), field="source.url.url")
    assert caught.value.kind is SourceErrorKind.INVALID_REFERENCE
    check_url(plain, UrlPolicy(allow_http=True), field="source.url.url")
    with pytest.raises(SourceError, match="link-local"):
        check_url(URL("http://169.254.169.254/latest/meta-data/"), UrlPolicy(True), field="source.url.url")
    with pytest.raises(SourceError, match="not an https"):
        check_url(URL("ftp://catalogue.example.com/r.json"), UrlPolicy(True), field="source.url.url")
    with pytest.raises(SourceError, match="credentials"):
        check_url(URL("https://a:b@catalogue.example.com/r.json"), UrlPolicy(), field="source.url.url")


def test_redirects_follow_the_policy() -> None:
    policy = UrlPolicy(allow_http=True)
    same = _next_url(ORIGIN, "/v2/registry.json", request(), policy, 0)
    assert same == URL("https://catalogue.example.com/v2/registry.json")
    with pytest.raises(SourceError, match="another host"):
        _next_url(ORIGIN, "https://elsewhere.example.com/r.json", request(), policy, 0)
    other = _next_url(
        ORIGIN, "https://elsewhere.example.com/r.json", request(RedirectPolicy.ANY_HOST), policy, 0
    )
    assert other.host == "elsewhere.example.com"
    with pytest.raises(SourceError, match="never redirects to another scheme"):
        _next_url(ORIGIN, "http://catalogue.example.com/r.json", request(RedirectPolicy.ANY_HOST), policy, 0)
    with pytest.raises(SourceError, match="link-local"):
        _next_url(ORIGIN, "https://169.254.169.254/", request(RedirectPolicy.ANY_HOST), policy, 0)
    with pytest.raises(SourceError, match="redirects is Refuse"):
        _next_url(ORIGIN, "/v2", request(RedirectPolicy.REFUSE), policy, 0)
    with pytest.raises(SourceError, match="more than 5 redirects"):
        _next_url(ORIGIN, "/v2", request(), policy, 5)
    with pytest.raises(SourceError, match="without a Location"):
        _next_url(ORIGIN, None, request(), policy, 0)


def test_messages_show_no_query_string() -> None:
    signed = URL("https://objects.example.com/r.json?X-Amz-Signature=abc&X-Amz-Credential=k")
    assert display(signed) == "https://objects.example.com/r.json?…"
    assert "abc" not in display(signed)


class _Fixed(AbstractResolver):
    """Answers every name with one address: stands in for DNS, which a unit test cannot control."""

    def __init__(self, address: str) -> None:
        self.address = address

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [ResolveResult(hostname=host, host=self.address, port=port, family=family, proto=0, flags=0)]

    async def close(self) -> None:
        return None


def test_a_name_resolving_to_a_metadata_address_is_refused_before_connecting() -> None:
    async def resolve(address: str) -> list[ResolveResult]:
        return await GuardedResolver(_Fixed(address)).resolve("metadata.example.com", 80)

    with pytest.raises(RefusedAddressError, match=r"169\.254\.169\.254"):
        asyncio.run(resolve("169.254.169.254"))
    assert asyncio.run(resolve("10.1.2.3"))[0]["host"] == "10.1.2.3"


def test_credentials_from_a_secret() -> None:
    assert credential_headers({"token": b"t0k\n"}, "Secret ns/s") == {"Authorization": "Bearer t0k"}
    basic = credential_headers({"username": b"me", "password": b"pw"}, "Secret ns/s")
    assert basic == {"Authorization": "Basic " + base64.b64encode(b"me:pw").decode()}
    custom = credential_headers({"headers": b"PRIVATE-TOKEN: abc\n\nX-Team: a: b\n"}, "Secret ns/s")
    assert custom == {"PRIVATE-TOKEN": "abc", "X-Team": "a: b"}


@pytest.mark.parametrize(
    "data",
    [{}, {"username": b"only"}, {"headers": b"Host: evil"}, {"headers": b"no colon"}, {"token": b"\xff"}],
)
def test_unusable_credentials_are_refused_without_their_values(data: dict[str, bytes]) -> None:
    with pytest.raises(SourceError) as caught:
        credential_headers(data, "Secret ns/s")
    assert caught.value.kind is SourceErrorKind.AUTHENTICATION
    assert "Secret ns/s" in caught.value.message
    assert "evil" not in caught.value.message


def test_the_signature_is_beside_the_document_unless_named() -> None:
    spec = UrlSource.model_validate({"url": "https://h.example/c/registry.json?ref=main"})
    assert spec.signature_location == "https://h.example/c/registry.json.sig?ref=main"
    named = UrlSource.model_validate(
        {
            "url": "https://h.example/r.json",
            "verify": {"secretRef": {"name": "k"}, "signatureUrl": "https://s/x"},
        }
    )
    assert named.signature_location == "https://s/x"
    assert spec.timeout_seconds == 60.0
    assert spec.max_bytes == 50 * 1024 * 1024


def test_conditional_headers_come_from_the_last_answer() -> None:
    assert Validators('"e1"', "Wed, 02 Dec 2026 10:00:00 GMT", '"e1"').headers() == {
        "If-None-Match": '"e1"',
        "If-Modified-Since": "Wed, 02 Dec 2026 10:00:00 GMT",
    }
    assert Validators(None, None, "sha256:x").headers() == {}


def test_the_cache_forgets_the_least_recently_used() -> None:
    cache = ValidatorCache(size=2)
    a, b, c = (("ns", name, "https://h/r") for name in "abc")
    for key in (a, b):
        cache.put(key, Validators(None, None, key[1]))
    assert cache.get(a) is not None  # a is now the most recent
    cache.put(c, Validators(None, None, "c"))
    assert cache.get(b) is None
    assert cache.get(a) is not None and cache.get(c) is not None


def test_the_factory_builds_a_url_source_keyed_by_registry() -> None:
    spec = MCPRegistrySpec.model_validate(
        {"source": {"type": "url", "url": {"url": "https://h.example/registry.json"}}}
    )
    source = build_source(spec, "team-a", None, None, None, registry="catalogue")  # type: ignore[arg-type]
    assert isinstance(source, UrlCatalogSource)
    assert source.describe() == "URL https://h.example/registry.json"
    assert source._key() == ("team-a", "catalogue", "https://h.example/registry.json")
