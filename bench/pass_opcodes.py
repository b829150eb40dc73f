"""Where one allocation pass's time goes, in bytecodes executed per function (a script).

    python bench/pass_opcodes.py [--policy drf|fair|ssf] [--agents 2000] [--frameworks 200]

Traces one full pass over `bench_allocator.py`'s view (every agent free, so one grant per
agent) after a warm-up pass, counting the bytecodes each Python function executes
(`sys.settrace` with opcode events). Unlike CPU time this does not change with the
machine's load; unlike callgrind's instructions it names Python functions, though it
does not weigh what a bytecode calls in C (a dict lookup, a bisect). Prints the total per
grant and the functions with the largest shares.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from types import FrameType
from typing import Any

from bench_allocator import AgentProfile, FrameworkProfile, build_view

from mesoslite.allocator.drf import DRFPolicy
from mesoslite.allocator.fair import FairPolicy
from mesoslite.allocator.hierarchical import HierarchicalAllocator
from mesoslite.allocator.ssf import SSFPolicy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", choices=["drf", "fair", "ssf"], default="drf")
    parser.add_argument("--agents", type=int, default=2000)
    parser.add_argument("--frameworks", type=int, default=200)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    policy = {"drf": DRFPolicy, "fair": FairPolicy, "ssf": SSFPolicy}[args.policy]()
    view = build_view(AgentProfile(args.agents), FrameworkProfile(args.frameworks))
    allocator = HierarchicalAllocator(policy)
    grants = len(allocator.allocate(view, 0.0).grants)  # warm-up
    counts: Counter[tuple[str, str]] = Counter()

    def trace(frame: FrameType, event: str, arg: Any) -> Any:
        frame.f_trace_opcodes = True
        if event == "opcode":
            code = frame.f_code
            counts[(code.co_filename.rsplit("/", 1)[-1], code.co_name)] += 1
        return trace

    sys.settrace(trace)
    allocator.allocate(view, 0.0)
    sys.settrace(None)
    total = sum(counts.values())
    print(f"{args.policy}: {total} bytecodes, {grants} grants, {total / grants:.0f} per grant")
    for (module, function), n in counts.most_common(args.top):
        print(f"{n / grants:8.1f} per grant {n / total:6.1%}  {module}:{function}")


if __name__ == "__main__":
    main()
