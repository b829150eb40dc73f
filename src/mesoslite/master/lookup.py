"""Finding the records a request names (framework, agent, offers, roles), with the error it gets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from mesoslite.errors import (
    ConflictError,
    UnknownAgentError,
    UnknownFrameworkError,
    UnknownOfferError,
    ValidationError,
)
from mesoslite.ids import AgentId, FrameworkId, OfferId
from mesoslite.master import records as rec
from mesoslite.model import Offer

if TYPE_CHECKING:
    from mesoslite.master.state import MasterState


def framework(state: MasterState, fid: FrameworkId) -> rec.FrameworkRecord:
    fw = state.frameworks.get(fid)
    if fw is None:
        if not fid:
            raise ValidationError("framework_id", "must not be empty")
        if fid in state.completed_frameworks:
            raise UnknownFrameworkError(f"framework {fid} was removed")
        raise UnknownFrameworkError(f"framework {fid} is not known")
    return fw


def connected_framework(state: MasterState, fid: FrameworkId) -> rec.FrameworkRecord:
    fw = framework(state, fid)
    if not fw.connected:
        raise ConflictError(f"framework {fid} is not subscribed: subscribe again first")
    return fw


def own_offers(
    state: MasterState,
    fw: rec.FrameworkRecord,
    offer_ids: Sequence[OfferId],
    *,
    together: bool = True,
) -> list[Offer]:
    """The framework's outstanding offers named; `together` (an ACCEPT): they must be
    of one agent and one role, as they are used as one pool."""
    if not offer_ids:
        raise ValidationError("offer_ids", "must name at least one offer")
    if len(set(offer_ids)) != len(offer_ids):
        raise ValidationError("offer_ids", "names the same offer twice")
    offers = []
    for oid in offer_ids:
        offer = state.offers.get(oid)
        if offer is None:
            raise UnknownOfferError(
                f"offer {oid!r} is not outstanding: it was never made, was rescinded, "
                "or was already used"
            )
        if offer.framework_id != fw.id:
            raise ConflictError(f"offer {oid!r} is not yours: it was made to another framework")
        offers.append(offer)
    if not together:
        return offers
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
    return offers


def own_roles(fw: rec.FrameworkRecord, roles: Sequence[str]) -> tuple[str, ...]:
    """`roles`, or all the framework's roles if empty. Raises `ValidationError` if it names
    a role the framework does not hold."""
    held = fw.info.all_roles
    for i, role in enumerate(roles):
        if role not in held:
            raise ValidationError(
                f"roles[{i}]", f"{role!r} is not one of the framework's roles ({', '.join(held)})"
            )
    return tuple(roles) or held


def agent(state: MasterState, agent_id: AgentId) -> rec.AgentRecord:
    found = state.agents.get(agent_id)
    if found is None:
        if agent_id in state.gone_agents:
            raise UnknownAgentError(f"agent {agent_id} was marked gone")
        raise UnknownAgentError(f"agent {agent_id!r} is not known")
    return found


def agent_active(state: MasterState, agent_id: AgentId) -> bool:
    found = state.agents.get(agent_id)
    return found is not None and found.status == rec.AGENT_ACTIVE
