"""Offers in the master: the view the allocator is given, the offers made from its round and
their rescinding, and why a framework is or is not offered (`explain`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from mesoslite.allocator.base import AgentView, AllocationRound, ClusterView, FrameworkView
from mesoslite.allocator.drf import dominant_share
from mesoslite.frozen import maker
from mesoslite.ids import AgentId, FrameworkId
from mesoslite.master import records as rec
from mesoslite.master.books import MasterBooks
from mesoslite.master.events import (
    AllocateSoon,
    Effect,
    OffersEvent,
    RescindEvent,
    SendToFramework,
)
from mesoslite.master.preemption import held_from
from mesoslite.master.roles import Explanation, RoleExplanation, outstanding
from mesoslite.model import Offer
from mesoslite.resources import Resources

logger = logging.getLogger(__name__)

# A framework's locality hints for `ssf`, comma-separated: `rack:r1,zone:z1,agent:ID`.
LOCALITY_LABEL = "mesoslite.locality"
_offer = maker(Offer)  # one per grant (#15)
_agent_view = maker(AgentView)  # one per agent changed, per pass


def view(books: MasterBooks, now: float, seed: int, locality_aware: bool) -> ClusterView:
    """What the allocator sees: the active agents' free resources and, per role, the
    connected frameworks. `locality_aware`: the policy ranks agents (`ssf`)."""
    free = {a.id: a.free for a in books.agents.values() if a.status == rec.AGENT_ACTIVE}
    agents = tuple(agent_view(books, a, free[a.id]) for a in books.agents.values() if a.id in free)
    return ClusterView(
        agents,
        framework_views(books, now, free, locality_aware),
        books.roles.weights,
        seed,
        books.roles.quotas,
        books.roles.priorities,
    )


def framework_views(
    books: MasterBooks, now: float, free: Mapping[AgentId, Resources], locality_aware: bool
) -> tuple[FrameworkView, ...]:
    """The connected frameworks as the allocator sees them, one view per role; `free`:
    the active agents' free resources (for which filters still apply)."""
    frameworks = []
    for fw in books.frameworks.values():
        if not fw.connected:
            continue
        demands = () if fw.demands is None else outstanding(fw.demands, fw.offered)
        locality, running_on = _locality(fw.info.labels), _running_on(fw, locality_aware)
        # One view per role (Mesos's MULTI_ROLE): see `allocator/hierarchical.py`.
        for role in fw.info.all_roles:
            filters = _filters(fw, role, now, free)
            if books.preemption.holds:  # agents emptied for a higher tier (#16)
                filters = filters | held_from(books, role, now)
            frameworks.append(
                FrameworkView(
                    fw.id,
                    role,
                    fw.held(role),
                    role in fw.suppressed_roles,
                    filters,
                    demands,
                    locality,
                    running_on,
                )
            )
    return tuple(frameworks)


def make_offers(books: MasterBooks, result: AllocationRound, now: float) -> list[Effect]:
    """Record the round's reasons and turn its grants into offers, one event per framework."""
    books.last_reasons = dict(result.reasons)
    books.last_role_reasons = {f: dict(r) for f, r in result.role_reasons.items()}
    by_framework: dict[FrameworkId, list[Offer]] = {}
    # Looked up once per round, not once per grant: a round makes thousands (#15).
    agent_of, framework_of = books.agents.get, books.frameworks.get
    new_id, add_offer = books.offers.new_id, books.offers.add
    for grant in result.grants:
        agent = agent_of(grant.agent_id)
        fw = framework_of(grant.framework_id)
        resources = grant.resources
        if agent is None or fw is None or resources.is_empty() or agent.draining:
            continue
        roles = fw.info.all_roles
        role = grant.role or (roles[0] if len(roles) == 1 else "")
        if role not in roles:
            # The allocator broke its contract (a role the framework does not hold).
            logger.error(
                "allocator granted for a role the framework does not hold"
                " framework_id=%s role=%r", fw.id, grant.role,
            )
            continue
        if not agent.fits(resources):
            # The allocator broke its contract; refuse rather than overcommit.
            logger.error("allocator granted more than free agent_id=%s", agent.id)
            continue
        info = agent.info
        offer_id, fid, agent_id = new_id(), fw.info.id, info.id
        offer = _offer(
            offer_id, fid, agent_id, info.hostname, resources, info.attributes, grant.reserved,
            role,
        )
        add_offer(offer, now)
        if grant.reserved:
            books.reservations.offered(offer_id, agent_id, grant.reserved)
        agent.offers.add(offer_id)
        agent.hold(resources)
        fw.offers.add(offer_id)
        fw.add_offered(role, resources)
        offers = by_framework.get(fid)
        if offers is None:
            by_framework[fid] = [offer]
        else:
            offers.append(offer)
    return [SendToFramework(fid, OffersEvent(tuple(o))) for fid, o in by_framework.items()]


def _fits(agent: rec.AgentRecord, resources: Resources) -> bool:
    """`agent.free.contains(resources)` (`AgentRecord.fits`)."""
    return agent.fits(resources)


def rescind(books: MasterBooks, offer: Offer, *, notify: bool) -> list[Effect]:
    """Take the offer back from its agent's and framework's books; `notify`: tell it."""
    books.offers.pop(offer.id)
    books.reservations.rescinded(offer.id)
    agent = books.agents.get(offer.agent_id)
    if agent is not None:
        agent.offers.discard(offer.id)
        agent.release(offer.resources)
    fw = books.frameworks.get(offer.framework_id)
    if fw is not None:
        fw.offers.discard(offer.id)
        fw.remove_offered(offer.allocation_role, offer.resources)
        if notify and fw.connected:
            return [SendToFramework(fw.id, RescindEvent(offer.id))]
    return []


def expire_offers(books: MasterBooks, now: float) -> list[Effect]:
    """Rescind the offers older than the offer timeout."""
    effects: list[Effect] = []
    for offer in books.offers.expired(now, books.offer_timeout_s):
        logger.debug("offer expired offer_id=%s framework_id=%s", offer.id, offer.framework_id)
        effects += rescind(books, offer, notify=True)
    if effects:
        effects.append(AllocateSoon())
    return effects


def explain(books: MasterBooks, fid: FrameworkId, now: float) -> Explanation:
    fw = books.frameworks.require(fid)
    total = Resources.empty()
    for agent in books.agents.values():
        if agent.status == rec.AGENT_ACTIVE:
            total = total + agent.info.resources
    roles = fw.info.all_roles
    not_subscribed = f"not subscribed ({fw.status}): only connected frameworks are offered"
    per_role = []
    filters: dict[str, float] = {}
    for role in roles:
        in_role = {
            str(a): t - now for a, t in sorted(fw.filters.get(role, {}).items()) if t > now
        }
        for agent_id, left in in_role.items():
            filters[agent_id] = max(left, filters.get(agent_id, 0.0))
        why = books.last_role_reasons.get(fid, {}).get(role, "")
        if len(roles) == 1:
            why = books.last_reasons.get(fid, "")
        per_role.append(
            RoleExplanation(
                role=role,
                weight=books.roles.weights.get(role, 1.0),
                dominant_share=dominant_share(fw.held(role), total),
                allocated=fw.used_by_role.get(role, Resources.empty()),
                offered=fw.offered_by_role.get(role, Resources.empty()),
                suppressed=role in fw.suppressed_roles,
                filters=in_role,
                quota=books.roles.quotas.get(role),
                last_reason=(not_subscribed if not fw.connected else why)
                or "no allocation pass has considered it yet",
            )
        )
    reason = books.last_reasons.get(fid, "")
    if not fw.connected:
        reason = not_subscribed
    return Explanation(
        framework_id=fid,
        status=fw.status,
        role=",".join(roles),
        role_weight=per_role[0].weight,
        dominant_share=dominant_share(fw.used + fw.offered, total),
        allocated=fw.used,
        offered=fw.offered,
        suppressed=fw.suppressed,
        filters=filters,
        demands=None if fw.demands is None else outstanding(fw.demands, fw.offered),
        quota=per_role[0].quota if len(roles) == 1 else None,
        last_reason=reason or "no allocation pass has considered it yet",
        roles=tuple(per_role),
    )


def reserved_on(books: MasterBooks, agent: rec.AgentRecord) -> dict[str, Resources]:
    reserved = dict(agent.info.reserved)
    for role, res in books.dynamic_reservations.get(agent.id, {}).items():
        reserved[role] = reserved.get(role, Resources.empty()) + res
    return reserved


def agent_view(books: MasterBooks, agent: rec.AgentRecord, free: Resources) -> AgentView:
    """The agent as the allocator sees it, given its free resources (`agent.free`)."""
    info = agent.info
    if not info.reserved and agent.id not in books.dynamic_reservations:
        # `AgentView(agent.id, info.hostname, info.resources, free, info.attributes)`
        return _agent_view(info.id, info.hostname, info.resources, free, info.attributes, {})
    unreserved, reserved = books.reservations.split(
        agent.id, info.resources, reserved_on(books, agent), agent.used + agent.offered
    )
    return AgentView(
        agent.id, info.hostname, info.resources, unreserved, info.attributes, reserved
    )


def _running_on(fw: rec.FrameworkRecord, locality_aware: bool) -> tuple[AgentId, ...]:
    # Only locality-aware policies (`ssf`) look at this; skip the walk for the others.
    if not locality_aware or not fw.tasks or LOCALITY_LABEL in fw.info.labels:
        return ()
    return tuple(sorted({t.agent_id for t in fw.tasks.values()}))


def _filters(
    fw: rec.FrameworkRecord, role: str, now: float, free: Mapping[AgentId, Resources]
) -> dict[AgentId, float]:
    """The framework's live filters in `role` that still apply: a filter holds an agent
    back only while its free resources are within what the framework refused there
    (Mesos's `RefusedOfferFilter`), so a framework that declined a leftover is offered the
    agent again as soon as a task there ends."""
    filters = fw.filters.get(role)
    if not filters:
        return {}
    refused_in_role = fw.refused.setdefault(role, {})
    for agent_id in [a for a, until in filters.items() if until <= now]:
        del filters[agent_id]
        refused_in_role.pop(agent_id, None)
    if not filters:
        del fw.filters[role]
        fw.refused.pop(role, None)
        return {}
    applying = {}
    for agent_id, until in filters.items():
        agent_free = free.get(agent_id)
        refused = refused_in_role.get(agent_id)
        if agent_free is None or refused is None or refused.contains(agent_free):
            applying[agent_id] = until
    return applying


def _locality(labels: Mapping[str, str]) -> tuple[str, ...]:
    if not labels:
        return ()  # asked of every framework each pass: the common case first
    hints = labels.get(LOCALITY_LABEL, "")
    return tuple(h.strip() for h in hints.split(",") if h.strip())
