"""How a registry's controller tells its own data writes from edits by hand, including an edit that
races a sync (its event arrives while the sync's own writes do)."""

from __future__ import annotations

from typing import Any, cast

from mcpreg_operator.controller import RegistryController


def controller(known_hash: str | None = "sha256:stored") -> RegistryController:
    made = RegistryController(namespace="ns", name="reg", ctx=cast(Any, None))
    made.known_hash = known_hash
    return made


def test_outside_a_sync_a_head_with_another_hash_is_foreign() -> None:
    judge = controller()
    assert judge.storage_event_is_foreign("sha256:edited")
    assert not judge.storage_event_is_foreign("sha256:stored")


def test_during_a_sync_events_are_held_and_judged_when_it_ends() -> None:
    judge = controller()
    judge.syncing = True
    assert not judge.storage_event_is_foreign("sha256:new")  # our own write, status not yet updated
    assert not judge.storage_event_is_foreign("sha256:" + "0" * 64)  # an edit by hand racing the sync
    judge.syncing, judge.known_hash = False, "sha256:new"
    assert judge._head_edited_while_syncing()
    assert not judge._head_edited_while_syncing(), "judged once"


def test_a_sync_whose_last_head_event_is_its_own_write_asks_for_nothing() -> None:
    judge = controller()
    judge.syncing = True
    judge.storage_event_is_foreign("sha256:" + "0" * 64)
    judge.storage_event_is_foreign("sha256:new")  # our write came after the edit and replaced it
    judge.syncing, judge.known_hash = False, "sha256:new"
    assert not judge._head_edited_while_syncing()


def test_a_sync_without_head_events_asks_for_nothing() -> None:
    judge = controller()
    assert not judge._head_edited_while_syncing()
