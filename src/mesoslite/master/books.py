"""`MasterBooks`: the master's books side by side, as the event handlers take them.

Each noun's data is owned by its book (`AgentBook`, `FrameworkBook`, `TaskBook`,
`OfferBook`, `RoleBook`, `ReservationBook`); the handlers in `frameworks.py`, `agents.py`,
`tasks.py`, `accept.py` and `allocation.py` take this bundle rather than `MasterState`, so
that the master's modules import one way: state -> handlers -> books -> records.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mesoslite.ids import AgentId, FrameworkId
from mesoslite.master.agent_book import AgentBook
from mesoslite.master.framework_book import FrameworkBook
from mesoslite.master.offers import OfferBook
from mesoslite.master.preemption_book import PreemptionBook
from mesoslite.master.reservations import ReservationBook
from mesoslite.master.roles import RoleBook
from mesoslite.master.task_book import TaskBook
from mesoslite.resources import Resources


@dataclass(slots=True)
class MasterBooks:
    agents: AgentBook
    frameworks: FrameworkBook
    offers: OfferBook
    offer_timeout_s: float
    tasks: TaskBook = field(default_factory=TaskBook)
    roles: RoleBook = field(default_factory=RoleBook)
    reservations: ReservationBook = field(default_factory=ReservationBook)
    # RESERVE/UNRESERVE: agent -> role -> resources, beside the agents' static ones.
    dynamic_reservations: dict[AgentId, dict[str, Resources]] = field(default_factory=dict)
    # The last allocation round's reasons (for `explain`), overall and per role.
    last_reasons: dict[FrameworkId, str] = field(default_factory=dict)
    last_role_reasons: dict[FrameworkId, dict[str, str]] = field(default_factory=dict)
    # Priority tiers' preemption (#16): waiting work, victims told and killed, held agents.
    preemption: PreemptionBook = field(default_factory=PreemptionBook)
