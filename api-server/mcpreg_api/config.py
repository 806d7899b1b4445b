"""Tunables of the API server: the `http` section of its configuration document (`mcpreg.apiconfig`),
with defaults fit for local use, and the fixed caching policies of the documents it serves."""

from __future__ import annotations

from mcpreg.apiconfig import AccessLogConfig, HttpConfig, HttpLimits

__all__ = ["DOCUMENT_CACHE_CONTROL", "NO_STORE", "AccessLogConfig", "HttpConfig", "HttpLimits"]

NO_STORE = "no-store"
DOCUMENT_CACHE_CONTROL = "public, max-age=300"
