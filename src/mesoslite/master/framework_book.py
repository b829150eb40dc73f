"""`FrameworkBook`: the master's frameworks by id, and the recently completed ones."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, ItemsView, Iterator, Mapping, ValuesView
from typing import Any

from mesoslite.errors import ConflictError, UnknownFrameworkError, ValidationError
from mesoslite.ids import FrameworkId, new_id
from mesoslite.master import records as rec
from mesoslite.master.constants import MAX_COMPLETED_FRAMEWORKS
from mesoslite.master.registry.base import RegistrySnapshot


class FrameworkBook(Mapping[FrameworkId, rec.FrameworkRecord]):
    """Owns the live framework records (the mapping) and the completed ones (`completed`)."""

    def __init__(self, new_ids: Callable[[], str] | None = None) -> None:
        self._new_ids = new_ids
        self._frameworks: dict[FrameworkId, rec.FrameworkRecord] = {}
        self._completed: OrderedDict[FrameworkId, rec.FrameworkRecord] = OrderedDict()

    def __getitem__(self, fid: FrameworkId) -> rec.FrameworkRecord:
        return self._frameworks[fid]

    def __iter__(self) -> Iterator[FrameworkId]:
        return iter(self._frameworks)

    def __len__(self) -> int:
        return len(self._frameworks)

    # The dict's own lookups, not `Mapping`'s (a `__getitem__` call and a `KeyError` each):
    # the master looks records up several times per task (#15).
    def get(self, key: FrameworkId, default: Any = None) -> Any:
        return self._frameworks.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._frameworks

    def values(self) -> ValuesView[rec.FrameworkRecord]:
        return self._frameworks.values()

    def items(self) -> ItemsView[FrameworkId, rec.FrameworkRecord]:
        return self._frameworks.items()

    def new_id(self) -> FrameworkId:
        """A fresh framework id: random, unless the book was given a sequence."""
        return FrameworkId(self._new_ids() if self._new_ids is not None else new_id("fw"))

    @property
    def completed(self) -> Mapping[FrameworkId, rec.FrameworkRecord]:
        """Removed frameworks, oldest first, at most `MAX_COMPLETED_FRAMEWORKS`."""
        return self._completed

    def require(self, fid: FrameworkId) -> rec.FrameworkRecord:
        """The framework a request names. Raises `UnknownFrameworkError`."""
        fw = self._frameworks.get(fid)
        if fw is None:
            if not fid:
                raise ValidationError("framework_id", "must not be empty")
            if fid in self._completed:
                raise UnknownFrameworkError(f"framework {fid} was removed")
            raise UnknownFrameworkError(f"framework {fid} is not known")
        return fw

    def connected(self, fid: FrameworkId) -> rec.FrameworkRecord:
        """The framework a request names, which must be subscribed."""
        fw = self.require(fid)
        if not fw.connected:
            raise ConflictError(f"framework {fid} is not subscribed: subscribe again first")
        return fw

    def known(self, fid: FrameworkId) -> rec.FrameworkRecord:
        """The framework re-subscribing with `fid`. Raises `UnknownFrameworkError`."""
        fw = self._frameworks.get(fid)
        if fw is None:
            if fid in self._completed:
                raise UnknownFrameworkError(
                    f"framework {fid} was removed (torn down or past its failover timeout)"
                )
            raise UnknownFrameworkError(f"framework {fid} is not known to this master")
        return fw

    def add(self, fw: rec.FrameworkRecord) -> None:
        self._frameworks[fw.id] = fw

    def forget(self, fw: rec.FrameworkRecord) -> None:
        """Drop a framework whose subscription was not written."""
        if self._frameworks.get(fw.id) is fw:
            del self._frameworks[fw.id]

    def complete(self, fw: rec.FrameworkRecord) -> None:
        """Move the framework to the completed ones (the oldest of those go)."""
        del self._frameworks[fw.id]
        fw.status = rec.FRAMEWORK_COMPLETED
        self._completed[fw.id] = fw
        while len(self._completed) > MAX_COMPLETED_FRAMEWORKS:
            self._completed.popitem(last=False)

    def restore(self, fw: rec.FrameworkRecord) -> None:
        """Take back a framework `complete` moved (its registry write failed)."""
        self._completed.pop(fw.id, None)
        self._frameworks[fw.id] = fw

    def fresh_windows(self, now: float) -> None:
        """Disconnected frameworks get their whole failover timeout from `now`."""
        for fw in self._frameworks.values():
            if fw.disconnected_at is not None:
                fw.disconnected_at = now

    def recover(self, snap: RegistrySnapshot, now: float) -> None:
        """Frameworks from the registry: disconnected until they subscribe again."""
        for info in snap.frameworks.values():
            self._frameworks[info.id] = rec.FrameworkRecord(
                info=info, status=rec.FRAMEWORK_DISCONNECTED, registered_at=now,
                disconnected_at=now,
            )

    def past_failover(self, now: float) -> list[rec.FrameworkRecord]:
        """Disconnected frameworks whose failover timeout has passed."""
        return [
            fw for fw in self._frameworks.values()
            if fw.status == rec.FRAMEWORK_DISCONNECTED
            and fw.disconnected_at is not None
            and now >= fw.disconnected_at + fw.info.failover_timeout_s
        ]
