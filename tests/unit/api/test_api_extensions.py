"""Our extension under the spec's namespace: /v0.1/x/dev.mcpregistry/info."""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from api_testdata import Serve, Served

from mcpreg.apiconfig import ApiServerConfig, SourceSummary
from mcpreg.storage import FileCatalogReader
from mcpreg_api.app import LOADER, create_app
from mcpreg_api.extensions import RegistryIdentity
from mcpreg_api.launch import registry_identity
from mcpreg_api.paths import INFO_PATH
from mcpreg_api.schemas import RegistryInfo


async def test_info_reports_the_generation_and_its_counts(edge: Served) -> None:
    response = await edge.client.get(INFO_PATH)
    assert response.status == 200
    info = await response.json()
    RegistryInfo.model_validate(info)
    # The edge catalogue: 5 names, 7 versions, two of them deleted.
    assert info["counts"] == {"servers": 5, "versions": 7, "active": 5, "deprecated": 0, "deleted": 2}
    readiness = (await (await edge.client.get("/readiness")).json())["catalog"]
    assert info["generation"]["contentHash"] == readiness["contentHash"]
    assert info["revision"] == readiness["revision"]
    assert info["registry"] is None and info["source"] is None  # a bare app knows neither
    again = await edge.client.get(INFO_PATH, headers={"If-None-Match": response.headers["ETag"]})
    assert again.status == 304


async def test_info_names_the_registry_and_its_source(serve: Serve, edge_file: Path) -> None:
    del serve  # the fixture's app has no identity: build one that has
    reader = FileCatalogReader(edge_file, poll_interval=0.02, count_servers=lambda _: 0)
    source = SourceSummary(type="git", repository="https://git.example.com/a.git", ref="main", path="r.json")
    app = create_app(reader, identity=RegistryIdentity("company", "team-a", source))
    async with TestClient(TestServer(app)) as client:
        await app[LOADER].wait_loaded()
        info = await (await client.get(INFO_PATH)).json()
    assert info["registry"] == {"name": "company", "namespace": "team-a"}
    assert info["source"] == {
        "type": "git",
        "repository": "https://git.example.com/a.git",
        "ref": "main",
        "path": "r.json",
    }


def test_a_file_served_locally_is_its_own_source() -> None:
    config = ApiServerConfig.model_validate(
        {
            "apiVersion": "mcpregistry.dev/v1alpha1",
            "kind": "ApiServerConfig",
            "storage": {"type": "file", "path": "/x.json"},
        }
    )
    identity = registry_identity(config)
    assert identity.source == SourceSummary(type="file", path="/x.json") and identity.name == ""
