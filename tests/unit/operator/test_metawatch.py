"""The pure parts of the operator's metadata-only watches: what a relist reports, and who reads a
source ConfigMap."""

from __future__ import annotations

from typing import cast

from mcpreg.kube import CONFIGMAPS, KubeClient
from mcpreg_operator.handlers import metadata_watches
from mcpreg_operator.metawatch import NamespaceScope, ObjectMeta, differences
from mcpreg_operator.source_readers import SourceReaders
from mcpreg_operator.source_watches import name_selector


def _meta(name: str, version: str, namespace: str = "ns") -> ObjectMeta:
    return ObjectMeta(namespace=namespace, name=name, resource_version=version)


def test_differences_report_added_modified_and_deleted_objects() -> None:
    known = {m.key: m for m in (_meta("same", "1"), _meta("edited", "2"), _meta("gone", "3"))}
    listed = [_meta("same", "1"), _meta("edited", "7"), _meta("new", "8")]
    assert [(kind, meta.name) for kind, meta in differences(known, listed)] == [
        ("MODIFIED", "edited"),
        ("ADDED", "new"),
        ("DELETED", "gone"),
    ]


def test_differences_of_the_same_listing_are_none() -> None:
    listed = [_meta("a", "1"), _meta("a", "1", namespace="other")]
    assert differences({m.key: m for m in listed}, listed) == []


def test_object_meta_reads_partial_object_metadata() -> None:
    obj = {"metadata": {"namespace": "ns", "name": "cm", "resourceVersion": "42", "labels": {"a": "b"}}}
    meta = ObjectMeta.of(obj)
    assert (meta.key, meta.resource_version, dict(meta.labels), dict(meta.annotations)) == (
        ("ns", "cm"),
        "42",
        {"a": "b"},
        {},
    )


def test_source_readers_follow_each_registrys_spec() -> None:
    readers = SourceReaders()
    configmap_source = {"source": {"type": "configmap", "configMap": {"name": "catalogue"}}}
    readers.update("ns", "b", configmap_source)
    readers.update("ns", "a", configmap_source)
    readers.update("other", "c", configmap_source)
    assert readers.readers("ns", "catalogue") == ["a", "b"]
    readers.update("ns", "a", {"source": {"type": "git", "git": {"repository": "https://x/y"}}})
    assert readers.readers("ns", "catalogue") == ["b"]
    readers.forget("ns", "b")
    assert readers.readers("ns", "catalogue") == []
    assert readers.readers("other", "catalogue") == ["c"]
    readers.update("other", "c", None)  # an invalid or empty spec reads nothing
    assert readers.readers("other", "catalogue") == []


def test_namespace_names_are_watched_one_by_one() -> None:
    scope = NamespaceScope(["team-b", "team-a", "team-a"])
    assert scope.watched() == ["team-a", "team-b"]
    assert scope.includes("team-a") and not scope.includes("team-c")


def test_no_namespaces_is_the_whole_cluster() -> None:
    scope = NamespaceScope([])
    assert scope.watched() == [""]
    assert scope.includes("anything")


def test_globs_watch_the_cluster_and_filter_as_kopf_does() -> None:
    scope = NamespaceScope(["team-*, !team-pr-*", "ops"])
    assert scope.watched() == [""]
    assert [ns for ns in ("team-a", "team-pr-1", "ops", "other") if scope.includes(ns)] == ["team-a", "ops"]
    seen: list[str] = []
    scoped = scope.only(lambda kind, meta: seen.append(meta.name))
    scoped("ADDED", _meta("in", "1", namespace="team-x"))
    scoped("ADDED", _meta("out", "1", namespace="team-pr-2"))
    assert seen == ["in"]


def test_source_readers_say_which_configmaps_to_watch() -> None:
    readers = SourceReaders()
    source = {"source": {"type": "configmap", "configMap": {"name": "catalogue"}}}
    readers.update("ns", "a", source)
    readers.update("ns", "b", source)
    readers.update("other", "c", source)
    assert readers.sources() == {("ns", "catalogue"), ("other", "catalogue")}
    readers.forget("other", "c")
    assert readers.sources() == {("ns", "catalogue")}


def test_the_operator_watches_configmaps_only_by_its_own_labels() -> None:
    """No unselected ConfigMap watch: the only ConfigMaps the server sends are the operator's own (and,
    through `SourceWatches`, each source by name)."""
    kube = cast(KubeClient, object())  # never called: the watches are only built here
    watches = metadata_watches(kube, ["team-a", "team-b"])
    configmap_watches = [w for w in watches if w.resource == CONFIGMAPS]
    assert [w.namespace for w in configmap_watches] == ["team-a", "team-b"]
    for watch in watches:
        assert watch.label_selector, f"{watch!r} is not narrowed on the server"
    assert {w.label_selector for w in configmap_watches} == {
        "app.kubernetes.io/managed-by=mcp-registry-operator,"
        "app.kubernetes.io/component in (catalog-data,registry-api)"
    }
    assert name_selector("catalogue") == "metadata.name=catalogue"
