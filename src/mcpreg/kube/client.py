"""A thin Kubernetes client over `kubernetes_asyncio`'s ApiClient, returning plain JSON dicts.

Why not the generated `*Api` classes: they turn every response into model objects (slow for
megabyte-sized binaryData, and on the event loop), they overwrite the `Accept` header (so no
metadata-only requests), their watch helper reads events with `readline()`, which aiohttp caps at
128 KiB per line (a ConfigMap event can be ten times that), they retry an expired watch with the same
stale resourceVersion, and each raises its own `ApiException` that every caller must decode. Here:
raw requests through the same ApiClient (so kubeconfig, in-cluster and exec credentials all keep
working), large bodies decoded off the event loop, every failure mapped to one `KubeError` hierarchy
(`mcpreg.kube.errors`), and watches split into events by hand.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import Any, TypedDict, Unpack
from urllib.parse import quote

import aiohttp
from kubernetes_asyncio.client import ApiClient

from mcpreg.kube.errors import (
    BadResponseError,
    KubeUnavailableError,
    NotFoundError,
    error_from_response,
)

JsonObject = dict[str, Any]

_JSON = "application/json"
_MERGE_PATCH = "application/merge-patch+json"
_APPLY_PATCH = "application/apply-patch+yaml"  # JSON is YAML: the body is sent as JSON
# Metadata-only representations (what client-go's metadata informers use): a head's annotations
# carry everything needed to decide whether anything changed, without its data.
_META_ITEM = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
_META_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
# Decoding JSON is quick for small bodies; above this size it moves to a worker thread.
_OFFLOAD_BYTES = 256 * 1024
# A ConfigMap is at most 1 MiB of values, base64 inflates binaryData by 4/3; leave ample headroom.
MAX_EVENT_BYTES = 8 * 1024 * 1024
_LIST_PAGE = 100

# What the client sends: a JSON object, as a mapping.
Body = Mapping[str, Any]


@dataclass(frozen=True)
class Resource:
    """A kind of object, as the REST API names it."""

    group: str  # "" for the core group
    version: str
    plural: str
    namespaced: bool = True  # False: cluster-scoped, addressed without a namespace
    subresource: str | None = None  # "status": an object's status, written apart from its spec

    def of(self, subresource: str) -> Resource:
        """The same kind's `subresource` (`MCPREGISTRIES.of("status")`)."""
        return dataclasses.replace(self, subresource=subresource)

    def path(self, namespace: str, name: str | None = None) -> str:
        """The REST path; an empty `namespace` (with no `name`) means every namespace (list, watch)."""
        root = f"/api/{self.version}" if not self.group else f"/apis/{self.group}/{self.version}"
        if not self.namespaced:
            return f"{root}/{self.plural}" if name is None else f"{root}/{self.plural}/{quote(name, safe='')}"
        if not namespace:
            if name is not None:
                raise ValueError(f"a {self.plural} object needs a namespace")
            return f"{root}/{self.plural}"
        parts = [root, "namespaces", quote(namespace, safe=""), self.plural]
        if name is not None:
            parts.append(quote(name, safe=""))
            if self.subresource is not None:
                parts.append(self.subresource)
        return "/".join(parts)


CONFIGMAPS = Resource("", "v1", "configmaps")
SECRETS = Resource("", "v1", "secrets")
SERVICES = Resource("", "v1", "services")
SERVICE_ACCOUNTS = Resource("", "v1", "serviceaccounts")
DEPLOYMENTS = Resource("apps", "v1", "deployments")
ROLES = Resource("rbac.authorization.k8s.io", "v1", "roles")
ROLE_BINDINGS = Resource("rbac.authorization.k8s.io", "v1", "rolebindings")
CLUSTER_ROLE_BINDINGS = Resource("rbac.authorization.k8s.io", "v1", "clusterrolebindings", namespaced=False)
HORIZONTAL_POD_AUTOSCALERS = Resource("autoscaling", "v2", "horizontalpodautoscalers")
NETWORK_POLICIES = Resource("networking.k8s.io", "v1", "networkpolicies")
# Reviews (created, never stored): TokenReview is cluster-scoped (created with namespace ""), the local
# SubjectAccessReview asks about one namespace.
TOKEN_REVIEWS = Resource("authentication.k8s.io", "v1", "tokenreviews", namespaced=False)
LOCAL_SUBJECT_ACCESS_REVIEWS = Resource("authorization.k8s.io", "v1", "localsubjectaccessreviews")


async def decode_json(body: bytes) -> Any:
    if len(body) > _OFFLOAD_BYTES:
        return await asyncio.to_thread(json.loads, body)
    return json.loads(body)


class RequestOptions(TypedDict, total=False):
    """What a request may carry besides its method and path."""

    query: list[tuple[str, str]] | None
    body: Body | None
    accept: str
    content_type: str


async def _read_and_release(response: aiohttp.ClientResponse) -> bytes:
    try:
        return await response.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise KubeUnavailableError(f"connection to the Kubernetes API server broke: {exc!r}") from exc
    finally:
        response.release()


class KubeClient:
    """Requests to the API server. `api` is owned by the caller (and closed by it)."""

    def __init__(self, api: ApiClient, *, request_timeout: float = 30.0) -> None:
        self.api = api
        self.request_timeout = request_timeout

    async def _open(
        self,
        method: str,
        path: str,
        *,
        client_timeout: aiohttp.ClientTimeout | None = None,
        **options: Unpack[RequestOptions],
    ) -> aiohttp.ClientResponse:
        """Send a request; returns the response with its status already checked (body unread)."""
        # identity: otherwise the API server gzips every large response and aiohttp inflates it on
        # the event loop (~100 ms of loop time per 10,000-server load), for base64 of bytes that
        # are mostly gzip already.
        headers = {
            "Accept": options.get("accept", _JSON),
            "Content-Type": options.get("content_type", _JSON),
            "Accept-Encoding": "identity",
        }
        try:
            response: aiohttp.ClientResponse = await self.api.call_api(
                path,
                method,
                query_params=options.get("query") or [],
                header_params=headers,
                body=options.get("body"),
                auth_settings=["BearerToken"],
                _preload_content=False,
                _request_timeout=client_timeout or aiohttp.ClientTimeout(total=self.request_timeout),
            )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise KubeUnavailableError(f"cannot reach the Kubernetes API server: {exc!r}") from exc
        if not 200 <= response.status < 300:
            error_body = await _read_and_release(response)
            raise error_from_response(
                response.status, error_body, response.reason or "", response.headers.get("Retry-After")
            )
        return response

    async def request(self, method: str, path: str, **options: Unpack[RequestOptions]) -> JsonObject:
        response = await self._open(method, path, **options)
        raw = await _read_and_release(response)
        try:
            decoded = await decode_json(raw)
        except ValueError as exc:
            raise BadResponseError(
                response.status, "BadResponse", "the API server answered with invalid JSON"
            ) from exc
        if not isinstance(decoded, dict):
            raise BadResponseError(
                response.status, "BadResponse", "the API server answered with non-object JSON"
            )
        return decoded

    # --- verbs --------------------------------------------------------------------------------

    async def get(
        self, resource: Resource, namespace: str, name: str, *, metadata_only: bool = False
    ) -> JsonObject | None:
        """The object, or None when it does not exist. `metadata_only` leaves out everything else."""
        try:
            return await self.request(
                "GET", resource.path(namespace, name), accept=_META_ITEM if metadata_only else _JSON
            )
        except NotFoundError:
            return None

    async def create(self, resource: Resource, namespace: str, body: Body) -> JsonObject:
        return await self.request("POST", resource.path(namespace), body=body)

    async def replace(self, resource: Resource, namespace: str, name: str, body: Body) -> JsonObject:
        """PUT: with `metadata.resourceVersion` in `body`, fails with ConflictError if it is stale."""
        return await self.request("PUT", resource.path(namespace, name), body=body)

    async def merge_patch(self, resource: Resource, namespace: str, name: str, patch: Body) -> JsonObject:
        """JSON merge patch (RFC 7386); a `metadata.resourceVersion` in `patch` makes it conditional."""
        return await self.request(
            "PATCH", resource.path(namespace, name), body=patch, content_type=_MERGE_PATCH
        )

    async def apply(
        self, resource: Resource, namespace: str, body: Body, *, field_manager: str
    ) -> JsonObject:
        """Server-side apply of `body` (which names itself) as `field_manager`, taking over conflicts."""
        name = str(body["metadata"]["name"])
        return await self.request(
            "PATCH",
            resource.path(namespace, name),
            query=[("fieldManager", field_manager), ("force", "true")],
            body=body,
            content_type=_APPLY_PATCH,
        )

    async def delete(self, resource: Resource, namespace: str, name: str, *, uid: str | None = None) -> bool:
        """Delete `name` (only if its uid is still `uid`, when given). False when it was absent."""
        body: JsonObject = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if uid is not None:
            body["preconditions"] = {"uid": uid}
        try:
            await self.request("DELETE", resource.path(namespace, name), body=body)
        except NotFoundError:
            return False
        return True

    async def list(
        self,
        resource: Resource,
        namespace: str,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        metadata_only: bool = False,
    ) -> tuple[list[JsonObject], str]:
        """All matching objects (following pagination) and the list's resourceVersion."""
        items: list[JsonObject] = []
        continue_token = ""
        while True:
            query = [("limit", str(_LIST_PAGE))]
            if label_selector:
                query.append(("labelSelector", label_selector))
            if field_selector:
                query.append(("fieldSelector", field_selector))
            if continue_token:
                query.append(("continue", continue_token))
            page = await self.request(
                "GET", resource.path(namespace), query=query, accept=_META_LIST if metadata_only else _JSON
            )
            items.extend(page.get("items") or [])
            metadata = page.get("metadata") or {}
            continue_token = str(metadata.get("continue") or "")
            if not continue_token:
                return items, str(metadata.get("resourceVersion") or "")

    async def watch(
        self,
        resource: Resource,
        namespace: str,
        *,
        resource_version: str,
        timeout_seconds: int,
        field_selector: str | None = None,
        label_selector: str | None = None,
        metadata_only: bool = True,
    ) -> AsyncGenerator[JsonObject, None]:
        """Watch events ({type, object}) from `resource_version` until the server ends the watch.

        Raises GoneError when the resourceVersion has expired (either as the HTTP status or as an
        ERROR event), another KubeError for other ERROR events, KubeUnavailableError when the
        connection breaks. BOOKMARK events are passed on (their object carries only a resourceVersion).
        """
        query = [
            ("watch", "true"),
            ("resourceVersion", resource_version),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", str(timeout_seconds)),
        ]
        if field_selector:
            query.append(("fieldSelector", field_selector))
        if label_selector:
            query.append(("labelSelector", label_selector))
        # No total timeout (the server ends the watch after timeout_seconds); a read timeout with
        # margin catches a connection that silently died.
        client_timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self.request_timeout, sock_read=timeout_seconds + 30
        )
        response = await self._open(
            "GET",
            resource.path(namespace),
            query=query,
            accept=_META_ITEM if metadata_only else _JSON,
            client_timeout=client_timeout,
        )
        buffer = bytearray()
        try:
            async for chunk in response.content.iter_any():
                buffer += chunk
                while (end := buffer.find(b"\n")) >= 0:
                    line = bytes(buffer[:end])
                    del buffer[: end + 1]
                    if line.strip():
                        yield await _watch_event(line)
                if len(buffer) > MAX_EVENT_BYTES:
                    raise BadResponseError(200, "EventTooLarge", "a watch event exceeded the size limit")
            if buffer.strip():
                yield await _watch_event(bytes(buffer))
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise KubeUnavailableError(f"watch connection broke: {exc!r}") from exc
        finally:
            response.release()


async def _watch_event(line: bytes) -> JsonObject:
    try:
        event = await decode_json(line)
    except ValueError as exc:
        raise BadResponseError(200, "BadWatchEvent", "the API server sent a malformed watch event") from exc
    if not isinstance(event, dict) or "type" not in event:
        raise BadResponseError(200, "BadWatchEvent", "the API server sent a malformed watch event")
    if event["type"] == "ERROR":
        status = event.get("object") or {}
        code = int(status.get("code") or 500)
        raise error_from_response(
            code, json.dumps(status).encode(), str(status.get("reason") or "Error"), None
        )
    return event


class NamespacedClient:
    """One kind of object in one namespace: the verbs of `KubeClient` without repeating both."""

    def __init__(self, kube: KubeClient, resource: Resource, namespace: str) -> None:
        self.kube = kube
        self.resource = resource
        self.namespace = namespace

    async def get(self, name: str, *, metadata_only: bool = False) -> JsonObject | None:
        return await self.kube.get(self.resource, self.namespace, name, metadata_only=metadata_only)

    async def create(self, body: Body) -> JsonObject:
        return await self.kube.create(self.resource, self.namespace, body)

    async def replace(self, name: str, body: Body) -> JsonObject:
        return await self.kube.replace(self.resource, self.namespace, name, body)

    async def delete(self, name: str, *, uid: str | None = None) -> bool:
        return await self.kube.delete(self.resource, self.namespace, name, uid=uid)

    async def list(
        self,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        metadata_only: bool = False,
    ) -> tuple[list[JsonObject], str]:
        return await self.kube.list(
            self.resource,
            self.namespace,
            label_selector=label_selector,
            field_selector=field_selector,
            metadata_only=metadata_only,
        )

    def watch(
        self, *, field_selector: str, resource_version: str, timeout_seconds: int, metadata_only: bool = True
    ) -> AsyncGenerator[JsonObject, None]:
        return self.kube.watch(
            self.resource,
            self.namespace,
            field_selector=field_selector,
            resource_version=resource_version,
            timeout_seconds=timeout_seconds,
            metadata_only=metadata_only,
        )


class ConfigMapClient(NamespacedClient):
    """ConfigMaps of one namespace (the storage backend's objects)."""

    def __init__(self, api: ApiClient, namespace: str, *, request_timeout: float = 30.0) -> None:
        super().__init__(KubeClient(api, request_timeout=request_timeout), CONFIGMAPS, namespace)
