"""Longer fuzzing of every RPC and of job specs against a real local cluster (issue 14).

    .venv/bin/python bench/fuzz_rpcs.py [--examples 300] [--spec-examples 1000] [--seed N]

The same generators and properties as `tests/fuzz/` (which run ~30 examples per RPC in
`make test`): for every method of Scheduler, Agent, Operator and Jobs, `--examples` requests
drawn from its proto descriptor, then `--spec-examples` job specs. Each answer must be OK or a
clear status with a message, within its deadline; the master must answer afterwards; a
refused call must leave the state fingerprint as it was. Prints a Markdown block for
bench/RESULTS.md: examples, answers by status, slowest answer, and any property broken.
"""

from __future__ import annotations

import argparse
import collections
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402
from hypothesis import HealthCheck, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from mesoslite._proto.v1 import jobs_pb2  # noqa: E402
from mesoslite.testing import LocalCluster  # noqa: E402
from mesoslite.transport import open_channel  # noqa: E402
from tests.fuzz import strategies  # noqa: E402
from tests.fuzz.harness import (  # noqa: E402
    METHODS,
    Method,
    call,
    check_answer,
    fingerprint,
    still_answers,
)
from tests.fuzz.test_fuzz_job_specs import SPEC_METHODS, spec_texts  # noqa: E402


class Tally:
    def __init__(self) -> None:
        self.codes: collections.Counter[str] = collections.Counter()
        self.broken: list[str] = []
        self.slowest = (0.0, "")
        self.examples = 0

    def run(self, client: Any, channel: Any, method: Method, request: Any) -> None:
        self.examples += 1
        before = fingerprint(client)
        started = time.perf_counter()
        outcome = call(channel, method, request)
        took = time.perf_counter() - started
        self.slowest = max(self.slowest, (took, str(method)))
        self.codes[outcome.code.name] += 1
        try:
            check_answer(method, outcome)
            still_answers(client)
            if outcome.code != grpc.StatusCode.OK:
                assert fingerprint(client) == before, f"{method}: refused but changed state"
        except AssertionError as e:
            self.broken.append(str(e)[:300])


def _fuzz_method(
    tally: Tally, client: Any, channel: Any, method: Method, opts: Any, rng_seed: int
) -> None:
    @seed(rng_seed)
    @opts
    @given(request=strategies.messages(method.input))
    def one(request: Any) -> None:
        tally.run(client, channel, method, request)

    one()


def fuzz(cluster: LocalCluster, examples: int, spec_examples: int, rng_seed: int) -> Tally:
    tally = Tally()
    channel = open_channel(cluster.master_address, aio=False)
    opts = settings(
        max_examples=examples, deadline=None, database=None,
        suppress_health_check=list(HealthCheck),
    )
    with cluster.client() as client:
        strategies.KNOWN_IDS[:] = list(cluster.agent_ids)
        for method in METHODS:
            _fuzz_method(tally, client, channel, method, opts, rng_seed)

        @seed(rng_seed)
        @settings(opts, max_examples=spec_examples)
        @given(method=st.sampled_from(SPEC_METHODS), spec=spec_texts)
        def spec(method: Method, spec: str) -> None:
            tally.run(client, channel, method, jobs_pb2.SubmitJobRequest(spec_yaml=spec))

        spec()
    channel.close()
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=300, help="requests per RPC")
    parser.add_argument("--spec-examples", type=int, default=1000, help="job specs")
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, LocalCluster(Path(tmp), agents=1) as cluster:
        tally = fuzz(cluster, args.examples, args.spec_examples, args.seed)
        dead = cluster.dead_daemons()
    wall = time.perf_counter() - started
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"### fuzz_rpcs ({platform.node()}, {when})")
    print()
    print(f"`bench/fuzz_rpcs.py --examples {args.examples} --spec-examples "
          f"{args.spec_examples} --seed {args.seed}`: {len(METHODS)} RPCs, "
          f"{tally.examples} calls in {wall:.0f} s ({tally.examples / wall:.0f} calls/s "
          "with two state fingerprints each)")
    print()
    print("| status | answers |\n| --- | --- |")
    for code, n in tally.codes.most_common():
        print(f"| {code} | {n} |")
    print()
    print(f"Slowest answer: {tally.slowest[0] * 1000:.0f} ms ({tally.slowest[1]}). "
          f"Daemons dead at the end: {dead or 'none'}. Properties broken: {len(tally.broken)}.")
    for line in tally.broken[:20]:
        print(f"- {line}")
    sys.exit(1 if tally.broken or dead else 0)


if __name__ == "__main__":
    main()
