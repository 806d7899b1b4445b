"""Write kubeconfig files for the local control plane: the admin (client certificate) and restricted
identities (a ServiceAccount's bearer token)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def _kubeconfig(
    server: str, ca_cert: Path, user: dict[str, Any], name: str, namespace: str
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "mcpreg-local",
                "cluster": {"server": server, "certificate-authority-data": _b64(ca_cert)},
            }
        ],
        "users": [{"name": name, "user": user}],
        "contexts": [
            {"name": name, "context": {"cluster": "mcpreg-local", "user": name, "namespace": namespace}}
        ],
        "current-context": name,
        "preferences": {},
    }


def _write(path: Path, config: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)  # it holds a credential
    return path


def write_cert_kubeconfig(
    path: Path,
    *,
    server: str,
    ca_cert: Path,
    client_cert: Path,
    client_key: Path,
    name: str = "mcpreg-admin",
    namespace: str = "default",
) -> Path:
    user = {"client-certificate-data": _b64(client_cert), "client-key-data": _b64(client_key)}
    return _write(path, _kubeconfig(server, ca_cert, user, name, namespace))


def write_token_kubeconfig(
    path: Path,
    *,
    server: str,
    ca_cert: Path,
    token: str,
    name: str,
    namespace: str = "default",
) -> Path:
    return _write(path, _kubeconfig(server, ca_cert, {"token": token}, name, namespace))
