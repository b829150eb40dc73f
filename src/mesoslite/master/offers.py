"""The book of outstanding offers: who holds which agent's resources, and since when."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from mesoslite.ids import AgentId, FrameworkId, IdSequence, OfferId
from mesoslite.model import Offer


@dataclass(frozen=True, slots=True)
class OfferEntry:
    offer: Offer
    created_at: float


class OfferBook:
    """Outstanding offers by id; the records of agents and frameworks keep their own indexes."""

    def __init__(self, run_id: str | None = None) -> None:
        self._offers: dict[OfferId, OfferEntry] = {}
        self._next_id = IdSequence("of", run_id)

    def new_id(self) -> OfferId:
        return OfferId(self._next_id())

    def add(self, offer: Offer, now: float) -> None:
        self._offers[offer.id] = OfferEntry(offer, now)

    def get(self, offer_id: OfferId) -> Offer | None:
        entry = self._offers.get(offer_id)
        return entry.offer if entry else None

    def pop(self, offer_id: OfferId) -> Offer:
        return self._offers.pop(offer_id).offer

    def expired(self, now: float, timeout_s: float) -> list[Offer]:
        """Offers older than `timeout_s` (none when the timeout is 0, i.e. disabled)."""
        if timeout_s <= 0:
            return []
        return [e.offer for e in self._offers.values() if now - e.created_at >= timeout_s]

    def of_agent(self, agent_id: AgentId) -> list[Offer]:
        return [e.offer for e in self._offers.values() if e.offer.agent_id == agent_id]

    def of_framework(self, framework_id: FrameworkId) -> list[Offer]:
        return [e.offer for e in self._offers.values() if e.offer.framework_id == framework_id]

    def __len__(self) -> int:
        return len(self._offers)

    def __iter__(self) -> Iterator[Offer]:
        return (e.offer for e in self._offers.values())
