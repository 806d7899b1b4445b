"""One generation's page data, built once per catalogue generation: the facts of each server's latest
version (sorted by title), the facets the filters offer, and each card's HTML.

A list page is then only a join: every card is sent, those the query does not match with `hidden`
(the script filters the same cards as the user types, so it needs them all; without the script the
`hidden` attribute still hides them). Built in a worker thread: for 10,000 servers it decodes every
body once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from mcpreg_api.page.facts import ServerFacts, server_facts
from mcpreg_api.queries import MAX_SEARCH_LENGTH, NO_CONTROL_CHARACTERS
from mcpreg_api.snapshot import Snapshot

STATUSES = ("active", "deprecated", "deleted")


def _text(value: Any) -> Any:
    if isinstance(value, str):
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
            raise ValueError("must not contain control characters")
        return value.strip()
    return value


def _field(max_length: int, description: str) -> Any:
    return Field(
        max_length=max_length, description=description, json_schema_extra={"pattern": NO_CONTROL_CHARACTERS}
    )


Text = Annotated[str, BeforeValidator(_text)]


class PageQuery(BaseModel):
    """The list page's filters (`/catalog/?q=…&tag=…&tier=…&transport=…&status=…`); empty means any."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    q: Annotated[
        Text, _field(MAX_SEARCH_LENGTH, "Case-insensitive substring of title, name, description, tags")
    ] = ""
    tag: Annotated[Text, _field(200, "A tag the server has")] = ""
    tier: Annotated[Text, _field(200, "The server's tier (Official, Community, …)")] = ""
    transport: Annotated[Text, _field(200, "A transport the server offers (stdio, streamable-http, sse)")] = (
        ""
    )
    status: Annotated[Text, _field(200, "active, deprecated or deleted; empty: all but deleted")] = ""

    def matcher(self) -> Callable[[ServerFacts, str], bool]:
        needle = self.q.casefold()
        tier = self.tier.casefold()

        def matches(facts: ServerFacts, haystack: str) -> bool:
            return (
                (not needle or needle in haystack)
                and (not self.tag or self.tag in facts.tags)
                and (not tier or facts.tier.casefold() == tier)
                and (not self.transport or self.transport in facts.transports)
                and (facts.status == self.status if self.status else facts.status != "deleted")
            )

        return matches

    def cache_key(self) -> tuple[str, ...]:
        return (self.q.casefold(), self.tag, self.tier.casefold(), self.transport, self.status)


@dataclass(frozen=True, slots=True)
class Card:
    facts: ServerFacts
    haystack: str
    html: str  # `<li …>…</li>` without the `hidden` attribute, which `list_html` adds where due


@dataclass(frozen=True, slots=True)
class Facets:
    tags: tuple[tuple[str, int], ...]  # by name
    tiers: tuple[str, ...]
    transports: tuple[str, ...]
    statuses: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PageData:
    content_hash: str
    cards: tuple[Card, ...]
    facets: Facets
    by_name: dict[str, Card]


def build_page_data(snapshot: Snapshot, render_card: Callable[[ServerFacts], str]) -> PageData:
    """The page data of `snapshot` (latest versions, deleted ones included: the status filter shows them)."""
    latest = snapshot.view(latest_only=True, with_deleted=True).entries
    cards = [Card(facts, facts.haystack(), render_card(facts)) for facts in map(server_facts, latest)]
    cards.sort(key=lambda card: (card.facts.title.casefold(), card.facts.name))
    tags: Counter[str] = Counter(tag for card in cards for tag in card.facts.tags)
    facets = Facets(
        tags=tuple(sorted(tags.items(), key=lambda item: item[0].casefold())),
        tiers=tuple(sorted({c.facts.tier for c in cards if c.facts.tier}, key=str.casefold)),
        transports=tuple(sorted({t for c in cards for t in c.facts.transports})),
        statuses=STATUSES,
    )
    return PageData(snapshot.content_hash, tuple(cards), facets, {c.facts.name: c for c in cards})
