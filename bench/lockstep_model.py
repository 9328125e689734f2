"""A model of one gateway process's event loop: why group commit made lock-step waves, and which
commit rule removes them (issue 15). No server runs: it is a discrete-event model.

    python bench/lockstep_model.py                       # the table for the default costs
    python bench/lockstep_model.py --cpu 0.3,0.08,0.32,0.18 --concurrency 64

Clients (like wrk's connections) each send a request, wait for its answer and send the next.
A request costs the loop's CPU in four pieces: A (read, parse, authenticate, price; then its
opening op: the credit hold), B (send the upstream call), C (read the upstream's answer, store
the image; then its closing op: the settlement) and E (send the answer). The upstream answers
after a fixed latency (± jitter). The loop runs as asyncio's does: each pass handles what was
ready when it began, and whatever a handler makes ready runs in the next pass. A transaction
costs the loop `--tx` ms plus `--op` ms per op.

Commit rules:
- `pass`: every op waits for the next pass and shares one transaction with the others queued
  in this one (the gateway before issue 15);
- `opening`: an opening op is committed at once, alone; closing ops as in `pass`;
- `every`: every op at once, alone;
- `first`: the first op of each pass at once, the rest as in `pass`;
- `first-opening`: the first opening op of each pass at once, the rest as in `pass` (the
  gateway now: as fast as `opening` at 50 ms, nearly as few transactions as `pass` under load);
- `idle`: as `opening`, but only when no batch was committed in the last two passes (tried:
  under load batches come every pass, so the waves came back);
- `carry`: as `first-opening`, and the opening op committed at once takes the ops queued by
  then into its transaction (the gateway since the tenth round);
- `defer`: as `carry`, and a closing op that finds no transaction queued, with `--siblings`
  or more other requests between their two ops, starts it `--defer` ms later instead of in
  the next pass (an opening op queued meanwhile starts it at once).

With the default costs (about 1.2 ms of CPU per request) `pass` reproduces what issue 15
measured at 32 connections and 50 ms: 58% of direct, the core half idle, p50 81 ms instead of 51.
"""

from __future__ import annotations

import argparse
import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field

NETWORK_MS = 0.05  # one way, each hop
CLIENT_MS = 0.02  # between an answer and the client's next request
QUIET_PASSES = 2  # the `idle` rule's (group_commit._QUIET_PASSES)


@dataclass
class Costs:
    a: float
    b: float
    c: float
    e: float
    tx: float
    op: float


@dataclass
class Outcome:
    rps: float
    busy: float
    p50: float
    transactions_per_request: float


@dataclass
class Loop:
    rule: str
    costs: Costs
    latency: float
    jitter: float
    rng: random.Random
    now: float = 0.0
    busy: float = 0.0
    transactions: int = 0
    events: list[tuple[float, int, str, int]] = field(default_factory=list)
    next_pass: list[tuple[str, int, str]] = field(default_factory=list)
    queued: list[tuple[int, str]] = field(default_factory=list)
    runner: bool = False
    led: bool = False
    sequence: int = 0
    passes: int = 0
    batched_at: int = -10
    defer: float = 0.0
    siblings: int = 4
    open: int = 0
    deferred: bool = False

    def at(self, when: float, kind: str, client: int) -> None:
        self.sequence += 1
        heapq.heappush(self.events, (when, self.sequence, kind, client))

    def cpu(self, ms: float) -> None:
        self.now += ms
        self.busy += ms

    def commit(self, ops: int) -> None:
        self.transactions += 1
        self.cpu(self.costs.tx + self.costs.op * ops)

    def committed(self, client: int, phase: str) -> None:
        if phase == "opening":
            self.cpu(self.costs.b)
            wait = self.latency + (self.rng.uniform(-1, 1) * self.jitter if self.jitter else 0)
            self.at(self.now + 2 * NETWORK_MS + wait, "upstream", client)
        else:
            self.cpu(self.costs.e)
            self.at(self.now + NETWORK_MS, "answered", client)

    def at_once(self, phase: str) -> bool:
        if self.runner and self.rule not in ("carry", "defer"):
            return False  # a transaction is queued: the writer is busy
        if self.rule == "every" or (self.rule == "opening" and phase == "opening"):
            return True
        if self.rule == "idle" and phase == "opening":
            return self.passes - self.batched_at > QUIET_PASSES
        if self.rule in ("first", "first-opening", "carry", "defer") and not self.led:
            if self.rule != "first" and phase != "opening":
                return False
            self.led = True
            self.next_pass.append(("new pass", -1, ""))
            return True
        return False

    def op(self, client: int, phase: str) -> None:
        if phase == "opening":
            self.open += 1
        else:
            self.open -= 1
        if self.rule in ("carry", "defer") and self.deferred and phase == "opening":
            self.deferred = False  # an opening op waits for no company: the runner starts
            self.next_pass.append(("commit", -1, ""))
        if self.at_once(phase):
            carried: list[tuple[int, str]] = []
            if self.rule in ("carry", "defer"):
                carried, self.queued = self.queued, []
            self.commit(1 + len(carried))
            self.committed(client, phase)
            self.next_pass.extend(("resume", c, p) for c, p in carried)
            return
        self.queued.append((client, phase))
        if not self.runner:
            self.runner = True
            if self.rule == "defer" and phase != "opening" and self.open >= self.siblings:
                self.deferred = True
                self.at(self.now + self.defer, "deferred", -1)
            else:
                self.next_pass.append(("commit", -1, ""))


def run(
    rule: str,
    costs: Costs,
    latency: float,
    jitter: float,
    clients: int,
    seconds: float = 20,
    defer: float = 0.5,
    siblings: int = 4,
) -> Outcome:
    loop = Loop(rule, costs, latency, jitter, random.Random(15), defer=defer, siblings=siblings)
    for client in range(clients):
        loop.at(loop.rng.uniform(0, 0.1), "request", client)
    started: dict[int, float] = {}
    latencies: list[float] = []
    handlers: dict[str, Callable[[int, str], None]] = {}

    def request(client: int, _: str) -> None:
        started[client] = loop.now
        loop.cpu(costs.a)
        loop.op(client, "opening")

    def upstream(client: int, _: str) -> None:
        loop.cpu(costs.c)
        loop.op(client, "closing")

    def answered(client: int, _: str) -> None:
        latencies.append(loop.now - started[client])
        loop.at(loop.now + CLIENT_MS, "request", client)

    def commit(_: int, __: str) -> None:
        batch, loop.queued = loop.queued, []
        loop.runner = False
        if not batch:  # an opening op committed at once carried them
            return
        loop.commit(len(batch))
        loop.batched_at = loop.passes
        loop.next_pass.extend(("resume", client, phase) for client, phase in batch)

    def new_pass(_: int, __: str) -> None:
        loop.led = False

    def deferred(_: int, __: str) -> None:
        if loop.deferred:
            loop.deferred = False
            commit(-1, "")

    handlers.update(
        request=request,
        upstream=upstream,
        answered=answered,
        commit=commit,
        resume=loop.committed,
        deferred=deferred,
    )
    handlers["new pass"] = new_pass
    end = seconds * 1000
    while loop.now < end:
        ready: list[tuple[str, int, str]] = []
        if not loop.next_pass and loop.events and loop.events[0][0] > loop.now:
            loop.now = loop.events[0][0]  # idle until the next event
        while loop.events and loop.events[0][0] <= loop.now:
            _, _, kind, client = heapq.heappop(loop.events)
            ready.append((kind, client, ""))
        ready, loop.next_pass = loop.next_pass + ready, []
        loop.passes += 1
        for kind, client, phase in ready:
            handlers[kind](client, phase)
    latencies.sort()
    answered_count = max(len(latencies), 1)
    return Outcome(
        len(latencies) / seconds,
        loop.busy / loop.now,
        latencies[len(latencies) // 2] if latencies else float("nan"),
        loop.transactions / answered_count,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cpu", default="0.4,0.1,0.45,0.25", help="A,B,C,E in ms")
    parser.add_argument("--tx", type=float, default=0.08, help="ms per transaction")
    parser.add_argument("--op", type=float, default=0.03, help="ms per op in a transaction")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rules", default="pass,opening,first,first-opening,idle,carry,defer")
    parser.add_argument("--defer", type=float, default=0.5, help="ms (the `defer` rule)")
    parser.add_argument("--siblings", type=int, default=4, help="(the `defer` rule)")
    args = parser.parse_args()
    a, b, c, e = (float(x) for x in args.cpu.split(","))
    costs = Costs(a, b, c, e, args.tx, args.op)
    clients = args.concurrency
    print("| upstream | rule | req/s | of direct | core busy | p50 ms | transactions/request |")
    print("|---|---|--:|--:|--:|--:|--:|")
    for latency, jitter in ((50.0, 0.0), (50.0, 25.0), (0.0, 0.0)):
        direct = clients / (latency + 2 * NETWORK_MS + CLIENT_MS) * 1000
        label = f"{latency:g} ms" + (f" ± {jitter:g}" if jitter else "") if latency else "instant"
        for rule in args.rules.split(","):
            out = run(
                rule, costs, latency, jitter, clients, defer=args.defer, siblings=args.siblings
            )
            share = f"{out.rps / direct:.0%}" if latency else "—"
            print(
                f"| {label} | {rule} | {out.rps:,.0f} | {share} | {out.busy:.0%} | {out.p50:.1f} "
                f"| {out.transactions_per_request:.2f} |"
            )


if __name__ == "__main__":
    main()
