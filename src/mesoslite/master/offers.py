"""The book of outstanding offers: who holds which agent's resources, and since when."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from mesoslite.errors import ConflictError, UnknownOfferError, ValidationError
from mesoslite.ids import AgentId, FrameworkId, IdSequence, OfferId
from mesoslite.model import Offer

# (the offer, when it was made): a plain tuple, one per offer, and a task is an offer (#15).
OfferEntry = tuple[Offer, float]


class OfferBook:
    """Outstanding offers by id; the records of agents and frameworks keep their own indexes."""

    def __init__(self, run_id: str | None = None) -> None:
        self._offers: dict[OfferId, OfferEntry] = {}
        self._next_id = IdSequence("of", run_id)

    def new_id(self) -> OfferId:
        return OfferId(self._next_id())

    def add(self, offer: Offer, now: float) -> None:
        self._offers[offer.id] = (offer, now)

    def get(self, offer_id: OfferId) -> Offer | None:
        entry = self._offers.get(offer_id)
        return entry[0] if entry else None

    def pop(self, offer_id: OfferId) -> Offer:
        return self._offers.pop(offer_id)[0]

    def expired(self, now: float, timeout_s: float) -> list[Offer]:
        """Offers older than `timeout_s` (none when the timeout is 0, i.e. disabled)."""
        if timeout_s <= 0:
            return []
        return [offer for offer, made in self._offers.values() if now - made >= timeout_s]

    def of_agent(self, agent_id: AgentId) -> list[Offer]:
        return [offer for offer, _ in self._offers.values() if offer.agent_id == agent_id]

    def of_framework(self, framework_id: FrameworkId) -> list[Offer]:
        return [
            offer for offer, _ in self._offers.values() if offer.framework_id == framework_id
        ]

    def owned(
        self, fid: FrameworkId, offer_ids: Sequence[OfferId], *, together: bool = True
    ) -> list[Offer]:
        """The framework's outstanding offers named; `together` (an ACCEPT): they must be
        of one agent and one role, as they are used as one pool."""
        if not offer_ids:
            raise ValidationError("offer_ids", "must name at least one offer")
        if len(offer_ids) == 1:
            # The common case: nothing to compare the offer with.
            return [self._owned(fid, offer_ids[0])]
        if len(set(offer_ids)) != len(offer_ids):
            raise ValidationError("offer_ids", "names the same offer twice")
        offers = [self._owned(fid, oid) for oid in offer_ids]
        if together:
            _check_one_pool(offers)
        return offers

    def _owned(self, fid: FrameworkId, oid: OfferId) -> Offer:
        entry = self._offers.get(oid)
        if entry is None:
            raise UnknownOfferError(
                f"offer {oid!r} is not outstanding: it was never made, was rescinded, "
                "or was already used"
            )
        offer = entry[0]
        if offer.framework_id != fid:
            raise ConflictError(f"offer {oid!r} is not yours: it was made to another framework")
        return offer

    def __len__(self) -> int:
        return len(self._offers)

    def __iter__(self) -> Iterator[Offer]:
        return (offer for offer, _ in self._offers.values())


def _check_one_pool(offers: list[Offer]) -> None:
    agents = {o.agent_id for o in offers}
    if len(agents) > 1:
        raise ValidationError(
            "offer_ids", f"offers span several agents ({', '.join(sorted(agents))})"
        )
    roles = {o.allocation_role for o in offers}
    if len(roles) > 1:
        raise ValidationError(
            "offer_ids",
            f"offers are allocated to several roles ({', '.join(sorted(roles))}):"
            " use offers of one role at a time",
        )
