"""A fleet of Socket.IO clients for benches: asyncio clients (`socketio.AsyncClient`, websocket transport)
spread over several child processes, so that receiving is not bound by one process's GIL or by a thread per
client.

Every client records, for one tracked event type (e.g. `casevac.created`), the receipt time of each event by
its `data.id`, and counts every other event type it receives. Receipt times are `time.monotonic()`:
CLOCK_MONOTONIC is system-wide on Linux, so the parent compares them with its own `time.monotonic()` taken
when it started the request.

    fleet = ClientFleet(processes=4, track="casevac.created")
    fleet.connect([(url, token), ...])         # spread round-robin over the child processes
    started = time.monotonic(); key = file_a_request()
    times = fleet.arrivals(key)                # once every connected client has it: their receipt times
    fleet.sync()                               # each client pages `sync` from 0: the tracked ids it gets
    fleet.collect()                            # per client: receipts, drops, other event counts
    fleet.close()

Every wait is bounded; a child that does not answer in time raises in the parent.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import resource
import time
from dataclasses import dataclass, field

# A slow connect on a loaded machine is retried, not failed at once.
CONNECT_ATTEMPTS = 5


class ClientFleet:
    def __init__(
        self,
        processes: int = 4,
        *,
        track: str = "casevac.created",
        reconnection: bool = False,
        connect_concurrency: int = 20,
    ):
        ctx = multiprocessing.get_context("spawn")
        self.processes, self._pipes = [], []
        for index in range(processes):
            parent_end, child_end = ctx.Pipe()
            process = ctx.Process(
                target=_child_main,
                name=f"clientfleet-{index}",
                args=(child_end, track, reconnection, connect_concurrency),
                daemon=True,
            )
            process.start()
            child_end.close()
            self.processes.append(process)
            self._pipes.append(parent_end)
        self._closed = False

    # -- commands: sent to every child, then every answer read (the children work side by side) ---------
    def _all(self, command: str, args_per_child: list[tuple], timeout: float) -> list:
        for pipe, args in zip(self._pipes, args_per_child, strict=False):
            pipe.send((command, args))
        answers = []
        deadline = time.monotonic() + timeout
        for pipe, process in zip(self._pipes, self.processes, strict=False):
            if not pipe.poll(max(0.0, deadline - time.monotonic())):
                raise TimeoutError(f"{process.name} did not answer {command} within {timeout:.0f} s")
            answer = pipe.recv()
            if isinstance(answer, BaseException):
                raise answer
            answers.append(answer)
        return answers

    def connect(self, targets: list[tuple[str, str | None]], timeout: float = 300) -> dict:
        """Connect one client per (url, token), target i in child i % processes.
        Returns {"connected": n, "errors": [first errors]}."""
        shares = [targets[n :: len(self._pipes)] for n in range(len(self._pipes))]
        answers = self._all("connect", [(share,) for share in shares], timeout)
        return {"connected": sum(a["connected"] for a in answers), "errors": [e for a in answers for e in a["errors"]]}

    def connected(self) -> int:
        return sum(self._all("connected", [()] * len(self._pipes), 30))

    def arrivals(self, key: str, timeout: float = 30) -> dict[str, list[float]]:
        """Wait until every connected client has received the tracked event with data.id == key; return the
        receipt times (time.monotonic) of those that did, by server URL (a client dropped meanwhile cannot
        receive it)."""
        answers = self._all("arrivals", [(key, timeout)] * len(self._pipes), timeout + 10)
        by_url: dict[str, list[float]] = {}
        for per_child in answers:
            for url, t in per_child:
                by_url.setdefault(url, []).append(t)
        return by_url

    def sync(self, timeout: float = 300) -> list[list[str]]:
        """Each client calls `sync` from 0, page after page; per client, the ids of the tracked events."""
        answers = self._all("sync", [(timeout,)] * len(self._pipes), timeout + 30)
        return [ids for per_child in answers for ids in per_child]

    def collect(self) -> dict:
        """Per client (in child order): {"received": {id: [monotonic time, seq]}, "drops", "counts"};
        plus the errors and each child's peak RSS."""
        answers = self._all("collect", [()] * len(self._pipes), 120)
        return {
            "clients": [c for a in answers for c in a["clients"]],
            "errors": [e for a in answers for e in a["errors"]],
            "peak_rss_kb": [a["peak_rss_kb"] for a in answers],
        }

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._all("close", [()] * len(self._pipes), 60)
        except (OSError, EOFError, TimeoutError):
            pass
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)

    def __enter__(self) -> "ClientFleet":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# -- child process ------------------------------------------------------------------------------------------


@dataclass
class _Client:
    sio: object
    url: str
    received: dict = field(default_factory=dict)  # data.id -> [monotonic receipt time, seq]
    counts: dict = field(default_factory=dict)  # other event type -> count
    drops: int = 0


def _child_main(pipe, track: str, reconnection: bool, connect_concurrency: int) -> None:
    asyncio.run(_Child(pipe, track, reconnection, connect_concurrency).serve())


class _Child:
    def __init__(self, pipe, track: str, reconnection: bool, connect_concurrency: int):
        self.pipe, self.track, self.reconnection = pipe, track, reconnection
        self.connect_concurrency = connect_concurrency
        self.clients: list[_Client] = []
        self.errors: list[str] = []
        self.changed: asyncio.Event | None = None

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        self.changed = asyncio.Event()
        while True:
            command, args = await loop.run_in_executor(None, self.pipe.recv)
            try:
                answer = await getattr(self, "do_" + command)(*args)
            except Exception as exc:  # noqa: BLE001 - handed to the parent, which raises it
                answer = RuntimeError(f"{command}: {type(exc).__name__}: {exc}")
            self.pipe.send(answer)
            if command == "close":
                return

    def _make(self, url: str):
        import socketio

        sio = socketio.AsyncClient(reconnection=self.reconnection, reconnection_delay=0.2, reconnection_delay_max=1)
        client = _Client(sio, url)
        track, changed = self.track, self.changed

        @sio.on("*")
        async def _any(event, envelope=None):
            now = time.monotonic()
            if event == track:
                key = (envelope.get("data") or {}).get("id")
                if key is not None and key not in client.received:
                    client.received[key] = [now, envelope.get("seq")]
                    changed.set()
            else:
                client.counts[event] = client.counts.get(event, 0) + 1

        @sio.event
        async def disconnect(*reason):
            client.drops += 1
            changed.set()

        return client

    async def do_connect(self, targets: list[tuple[str, str | None]]) -> dict:
        gate = asyncio.Semaphore(self.connect_concurrency)
        errors: list[str] = []

        async def one(url: str, token: str | None) -> _Client | None:
            async with gate:
                for attempt in range(CONNECT_ATTEMPTS):
                    client = self._make(url)
                    try:
                        await client.sio.connect(
                            url, auth={"token": token} if token else None, transports=["websocket"], wait_timeout=30
                        )
                        return client
                    except Exception as exc:  # noqa: BLE001 - counted and reported
                        if attempt == CONNECT_ATTEMPTS - 1:
                            errors.append(f"connect {url}: {type(exc).__name__}: {exc}")
                        await asyncio.sleep(0.5)
            return None

        made = await asyncio.gather(*(one(url, token) for url, token in targets))
        self.clients += [c for c in made if c is not None]
        self.errors += errors
        return {"connected": sum(c is not None for c in made), "errors": errors[:5]}

    def _connected(self) -> list[_Client]:
        return [c for c in self.clients if c.sio.connected]

    async def do_connected(self) -> int:
        return len(self._connected())

    async def do_arrivals(self, key: str, timeout: float) -> list[tuple[str, float]]:
        deadline = time.monotonic() + timeout
        while True:
            self.changed.clear()
            live = self._connected()
            if all(key in c.received for c in live):
                return [(c.url, c.received[key][0]) for c in live]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                got = sum(key in c.received for c in live)
                raise TimeoutError(f"only {got} of {len(live)} clients received {key} in {timeout:.0f} s")
            try:
                await asyncio.wait_for(self.changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    async def do_sync(self, timeout: float) -> list[list[str]]:
        gate = asyncio.Semaphore(self.connect_concurrency)
        deadline = time.monotonic() + timeout

        async def one(client: _Client) -> list[str]:
            ids: list[str] = []
            async with gate:
                # A client dropped during the run reconnects by itself (with reconnection): wait for it, bounded.
                back_by = min(deadline, time.monotonic() + 30)
                while not client.sio.connected and time.monotonic() < back_by:
                    await asyncio.sleep(0.1)
                since = 0
                for _ in range(10_000):  # bounded paging
                    try:
                        ack = await client.sio.call(
                            "sync", {"since": since, "limit": 1000}, timeout=max(1.0, deadline - time.monotonic())
                        )
                    except Exception as exc:  # noqa: BLE001 - counted and reported
                        self.errors.append(f"sync: {type(exc).__name__}: {exc}")
                        break
                    ids += [
                        (e.get("data") or {}).get("id") for e in ack.get("events", []) if e.get("type") == self.track
                    ]
                    since = ack.get("last_seq", since)
                    if not ack.get("more"):
                        break
            return ids

        return list(await asyncio.gather(*(one(c) for c in self.clients)))

    async def do_collect(self) -> dict:
        return {
            "clients": [{"received": c.received, "drops": c.drops, "counts": c.counts} for c in self.clients],
            "errors": self.errors[:20],
            "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        }

    async def do_close(self) -> bool:
        await asyncio.gather(*(c.sio.disconnect() for c in self.clients if c.sio.connected), return_exceptions=True)
        return True
