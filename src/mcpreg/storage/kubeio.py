"""A thin ConfigMap client over `kubernetes_asyncio`'s ApiClient, returning plain JSON dicts.

Why not the generated `CoreV1Api` methods: they turn every response into model objects (slow for
megabyte-sized binaryData, and on the event loop), they overwrite the `Accept` header (so no
metadata-only requests), their watch helper reads events with `readline()`, which aiohttp caps at
128 KiB per line (a ConfigMap event can be ten times that), and it retries an expired watch with the
same stale resourceVersion. Here: raw requests through the same ApiClient (so kubeconfig,
in-cluster and exec credentials all keep working), large bodies decoded off the event loop, HTTP
errors mapped to typed exceptions, and watches split into events by hand.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import aiohttp
from kubernetes_asyncio.client import ApiClient

from mcpreg.storage.errors import StorageAccessError, StorageError

JsonObject = dict[str, Any]

_COLLECTION = "/api/v1/namespaces/{namespace}/configmaps"
_ITEM = "/api/v1/namespaces/{namespace}/configmaps/{name}"
_JSON = "application/json"
# Metadata-only representations (what client-go's metadata informers use): a head's annotations
# carry everything needed to decide whether anything changed, without its data.
_META_ITEM = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
_META_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
# Decoding JSON is quick for small bodies; above this size it moves to a worker thread.
_OFFLOAD_BYTES = 256 * 1024
# A ConfigMap is at most 1 MiB of values, base64 inflates binaryData by 4/3; leave ample headroom.
MAX_EVENT_BYTES = 8 * 1024 * 1024
_LIST_PAGE = 100


class KubeApiError(StorageError):
    """The API server answered with an error status."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{message} (HTTP {status} {reason})" if message else f"HTTP {status} {reason}")
        self.status = status
        self.reason = reason
        self.message = message


class NotFoundError(KubeApiError):
    pass


class ConflictError(KubeApiError):
    """409: `reason` is AlreadyExists (create) or Conflict (stale resourceVersion or precondition)."""


class GoneError(KubeApiError):
    """410: the resourceVersion a watch or list continued from is too old."""


class ForbiddenError(KubeApiError, StorageAccessError):
    """401 or 403."""


class KubeUnavailableError(StorageAccessError):
    """The API server could not be reached or did not answer in time."""


def _error(status: int, body: bytes, fallback_reason: str) -> KubeApiError:
    reason, message = fallback_reason, ""
    try:
        status_obj = json.loads(body)
        if isinstance(status_obj, dict):
            reason = str(status_obj.get("reason") or reason)
            message = str(status_obj.get("message") or "")
    except ValueError:
        pass
    if status == 404:
        return NotFoundError(status, reason, message)
    if status == 409:
        return ConflictError(status, reason, message)
    if status == 410:
        return GoneError(status, reason, message)
    if status in (401, 403):
        return ForbiddenError(status, reason, message)
    return KubeApiError(status, reason, message)


async def decode_json(body: bytes) -> Any:
    if len(body) > _OFFLOAD_BYTES:
        return await asyncio.to_thread(json.loads, body)
    return json.loads(body)


class ConfigMapClient:
    """ConfigMaps of one namespace. `api` is owned by the caller (and closed by it)."""

    def __init__(self, api: ApiClient, namespace: str, *, request_timeout: float = 30.0) -> None:
        self.api = api
        self.namespace = namespace
        self.request_timeout = request_timeout

    async def _open(
        self,
        method: str,
        path: str,
        *,
        name: str | None = None,
        query: list[tuple[str, str]] | None = None,
        body: Mapping[str, Any] | None = None,
        accept: str = _JSON,
        client_timeout: aiohttp.ClientTimeout | None = None,
    ) -> aiohttp.ClientResponse:
        """Send a request; returns the response with its status already checked (body unread)."""
        path_params = {"namespace": self.namespace}
        if name is not None:
            path_params["name"] = name
        # identity: otherwise the API server gzips every large response and aiohttp inflates it on
        # the event loop (~100 ms of loop time per 10,000-server load), for base64 of bytes that
        # are mostly gzip already.
        headers = {"Accept": accept, "Content-Type": _JSON, "Accept-Encoding": "identity"}
        try:
            response: aiohttp.ClientResponse = await self.api.call_api(
                path,
                method,
                path_params=path_params,
                query_params=query or [],
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _request_timeout=client_timeout or aiohttp.ClientTimeout(total=self.request_timeout),
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise KubeUnavailableError(f"cannot reach the Kubernetes API server: {exc!r}") from exc
        if not 200 <= response.status < 300:
            try:
                error_body = await response.read()
            finally:
                response.release()
            raise _error(response.status, error_body, response.reason or "")
        return response

    async def _request(
        self,
        method: str,
        path: str,
        *,
        name: str | None = None,
        query: list[tuple[str, str]] | None = None,
        body: Mapping[str, Any] | None = None,
        accept: str = _JSON,
    ) -> JsonObject:
        response = await self._open(method, path, name=name, query=query, body=body, accept=accept)
        try:
            raw = await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise KubeUnavailableError(f"connection to the Kubernetes API server broke: {exc!r}") from exc
        finally:
            response.release()
        decoded = await decode_json(raw)
        if not isinstance(decoded, dict):
            raise KubeApiError(response.status, "BadResponse", "the API server answered with non-object JSON")
        return decoded

    async def get(self, name: str, *, metadata_only: bool = False) -> JsonObject | None:
        """The ConfigMap, or None when it does not exist. `metadata_only` leaves out data."""
        try:
            return await self._request("GET", _ITEM, name=name, accept=_META_ITEM if metadata_only else _JSON)
        except NotFoundError:
            return None

    async def create(self, body: Mapping[str, Any]) -> JsonObject:
        return await self._request("POST", _COLLECTION, body=body)

    async def replace(self, name: str, body: Mapping[str, Any]) -> JsonObject:
        """PUT: with `metadata.resourceVersion` in `body`, fails with ConflictError if it is stale."""
        return await self._request("PUT", _ITEM, name=name, body=body)

    async def delete(self, name: str, *, uid: str | None = None) -> bool:
        """Delete `name` (only if its uid is still `uid`, when given). False when it was absent."""
        body: JsonObject = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if uid is not None:
            body["preconditions"] = {"uid": uid}
        try:
            await self._request("DELETE", _ITEM, name=name, body=body)
        except NotFoundError:
            return False
        return True

    async def list(
        self,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        metadata_only: bool = False,
    ) -> tuple[list[JsonObject], str]:
        """All matching ConfigMaps (following pagination) and the list's resourceVersion."""
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
            page = await self._request(
                "GET", _COLLECTION, query=query, accept=_META_LIST if metadata_only else _JSON
            )
            items.extend(page.get("items") or [])
            metadata = page.get("metadata") or {}
            continue_token = str(metadata.get("continue") or "")
            if not continue_token:
                return items, str(metadata.get("resourceVersion") or "")

    async def watch(
        self,
        *,
        field_selector: str,
        resource_version: str,
        timeout_seconds: int,
        metadata_only: bool = True,
    ) -> AsyncGenerator[JsonObject, None]:
        """Watch events ({type, object}) from `resource_version` until the server ends the watch.

        Raises GoneError when the resourceVersion has expired (either as the HTTP status or as an
        ERROR event), KubeApiError for other ERROR events, KubeUnavailableError when the connection
        breaks. BOOKMARK events are passed on (their object carries only a resourceVersion).
        """
        query = [
            ("watch", "true"),
            ("fieldSelector", field_selector),
            ("resourceVersion", resource_version),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", str(timeout_seconds)),
        ]
        # No total timeout (the server ends the watch after timeout_seconds); a read timeout with
        # margin catches a connection that silently died.
        client_timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self.request_timeout, sock_read=timeout_seconds + 30
        )
        response = await self._open(
            "GET",
            _COLLECTION,
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
                        yield await self._watch_event(line)
                if len(buffer) > MAX_EVENT_BYTES:
                    raise KubeApiError(200, "EventTooLarge", "a watch event exceeded the size limit")
            if buffer.strip():
                yield await self._watch_event(bytes(buffer))
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise KubeUnavailableError(f"watch connection broke: {exc!r}") from exc
        finally:
            response.release()

    @staticmethod
    async def _watch_event(line: bytes) -> JsonObject:
        event = await decode_json(line)
        if not isinstance(event, dict) or "type" not in event:
            raise KubeApiError(200, "BadWatchEvent", "the API server sent a malformed watch event")
        if event["type"] == "ERROR":
            status = event.get("object") or {}
            code = int(status.get("code") or 500)
            raise _error(code, json.dumps(status).encode(), str(status.get("reason") or "Error"))
        return event
