"""`RoleTree`: hierarchical roles (`eng`, `eng/ml`) kept in policy order, level by level.

Each internal role has a sorter of its children; a child's allocation is the sum of its
subtree's, and its weight is `weights[path]` (default 1). A role that holds frameworks and
also has children (`eng` beside `eng/ml`) gets a virtual leaf `eng/.` among its children,
as in Mesos's hierarchical sorter, so the role's own frameworks compete with its sub-roles.

`first()` walks from the root taking the first child at each level: the leaf role to serve
next. Roles that can take nothing more this pass are removed, and an internal role that
loses its last child goes too, so `first()` never descends into an empty subtree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from mesoslite.allocator.sorter import Sorter
from mesoslite.resources import Resources

ROOT = ""
SELF = "/."  # suffix of the virtual leaf of a role that also has sub-roles


def parent_role(role: str) -> str:
    """`eng/ml` -> `eng`; `eng` -> the root (`""`)."""
    return role.rpartition("/")[0]


def ancestors(role: str) -> list[str]:
    """`a/b/c` -> `["a/b/c", "a/b", "a"]`: the role and every role above it."""
    out = []
    while role:
        out.append(role)
        role = parent_role(role)
    return out


class RoleTree:
    """Leaf roles in the order of a policy applied level by level.

    Args:
        allocations: leaf role -> what it holds (every role that has frameworks).
        make_sorter: builds the (empty) sorter for the children of an internal role.
    """

    def __init__(
        self, allocations: Mapping[str, Resources], make_sorter: Callable[[], Sorter]
    ) -> None:
        internal: set[str] = {ROOT}
        for role in allocations:
            internal.update(ancestors(parent_role(role)))
        self._sorters: dict[str, Sorter] = {ROOT: make_sorter()}
        self._parent: dict[str, str] = {}
        self._leaf_key: dict[str, str] = {}
        sums: dict[str, Resources] = {}
        for role, allocated in allocations.items():
            key = role + SELF if role in internal else role
            self._leaf_key[role] = key
            self._parent[key] = role if role in internal else parent_role(role)
            sums[key] = sums.get(key, Resources.empty()) + allocated
            for above in ancestors(parent_role(role)):
                sums[above] = sums.get(above, Resources.empty()) + allocated
        for path in sorted(internal - {ROOT}, key=lambda p: p.count("/")):
            self._parent[path] = parent_role(path)
            self._sorters[path] = make_sorter()
        # Insert every node under its parent, parents first, so sorters exist.
        for key in sorted(self._parent, key=lambda k: k.count("/")):
            self._sorters[self._parent[key]].add(key, sums[key])
        self._leaves = {key: role for role, key in self._leaf_key.items()}
        # Every leaf right under the root (no nested roles, the common case): `first` and
        # `allocate` need one level only (#15).
        self._root = self._sorters[ROOT] if len(self._sorters) == 1 else None

    def first(self) -> str | None:
        """The leaf role to serve next, or None when no role is left."""
        if self._root is not None:
            child = self._root.first()
            return None if child is None else self._leaves[child]
        node = ROOT
        while True:
            child = self._sorters[node].first()
            if child is None:
                return None
            if child in self._leaves:
                return self._leaves[child]
            node = child

    def allocate(self, role: str, resources: Resources) -> None:
        """`role` was given `resources`: every level above it moves to its new place."""
        key = self._leaf_key[role]
        if self._root is not None:
            self._root.grow(key, resources)
            return
        while True:
            parent = self._parent[key]
            self._sorters[parent].grow(key, resources)
            if parent == ROOT:
                return
            key = parent

    def remove(self, role: str) -> None:
        """`role` takes nothing more this pass; empty roles above it go with it."""
        key = self._leaf_key.get(role)
        if key is None or key not in self._leaves:
            return
        del self._leaves[key]
        while True:
            parent = self._parent[key]
            self._sorters[parent].remove(key)
            if parent == ROOT or len(self._sorters[parent]):
                return
            key = parent

    def __contains__(self, role: object) -> bool:
        return isinstance(role, str) and self._leaf_key.get(role) in self._leaves
