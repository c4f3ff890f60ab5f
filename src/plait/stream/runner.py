"""The driver of a running dataflow: it routes messages, tracks progress, offers notifications.

The driver runs rounds on a thread of its own. A round takes the input events
sent since the last one (records, epoch advances, closes), offers each worker
the notifications whose time is complete at the operator that asked, and steps
every worker that has messages or notifications waiting, all at once (each
worker an actor process, or in this process). Each step's pointstamp changes
come back as one batch and are applied whole, which is what keeps the
progress protocol safe (see ``progress``); the records for other workers are
held in their inboxes for their next step. Captured records come back with the
step that captured them, before its changes are applied, so an epoch that is
complete at a capture is also complete in it.
"""

from __future__ import annotations

import os
import pickle
import threading
from collections import deque
from typing import Any

from plait.stream.dataflow import Sink
from plait.stream.plan import PIPELINE
from plait.stream.progress import Tracker
from plait.stream.worker import StreamError, Worker, split

_FEED_BATCH = 1024  # records a from_iterable feeder sends at once
_POLL_S = 0.002  # how often the driver looks for new input while a worker process is idle


class _WorkerProcess:
    """A worker as an actor: a dataflow's plan arrives pickled once (``load``), then one
    call per step. Kept for the next dataflow when this one is done: starting a process
    costs more than a small dataflow's whole run."""

    def __init__(self) -> None:
        self.worker: Worker | None = None

    def load(self, plan_blob: bytes, index: int, peers: int) -> None:
        import cloudpickle

        self.worker = Worker(cloudpickle.loads(plan_blob), index, peers)

    def step(self, work: bytes) -> bytes:
        assert self.worker is not None
        return _pack(self.worker.step(*pickle.loads(work)))


def _pack(value: Any) -> bytes:
    """Records travel between driver and worker processes pickled as one blob: plait's own
    argument encoding looks at every object for futures, which records never hold."""
    try:
        return pickle.dumps(value, protocol=5)
    except (pickle.PicklingError, TypeError, AttributeError):  # a lambda in a record, say
        import cloudpickle

        return cloudpickle.dumps(value, protocol=5)


_IDLE: dict[str, list[Any]] = {}  # engine session -> worker processes done with their dataflow
_IDLE_KEPT = max(2, os.cpu_count() or 1)


def _lend(count: int) -> list[Any]:
    """``count`` worker processes of the current engine: idle ones first, then new ones."""
    import plait
    from plait.runtime.context import current_engine

    session = current_engine().session
    for stale in [s for s in _IDLE if s != session]:  # that engine is shut down, its actors with it
        del _IDLE[stale]
    idle = _IDLE.setdefault(session, [])
    lent = [idle.pop() for _ in range(min(count, len(idle)))]
    worker_class = plait.actor(_WorkerProcess)
    return lent + [worker_class() for _ in range(count - len(lent))]


def _give_back(handles: list[Any], healthy: bool) -> None:
    import plait
    from plait.runtime.context import current_engine

    idle = _IDLE.setdefault(current_engine().session, [])
    for handle in handles:
        if healthy and len(idle) < _IDLE_KEPT:
            idle.append(handle)
        else:
            plait.kill(handle)


class Runner:
    def __init__(self, flow: Any) -> None:
        self.flow = flow
        self.plan = flow.plan
        self.lock: threading.Condition = flow._lock
        self.tracker = Tracker(self.plan)
        self.peers = flow.workers
        self.random = flow.schedule
        self.consumers = self.plan.consumers()
        self.events: deque[tuple[int, tuple, int]] = deque()
        self.pending = 0  # records sent or routed but not yet taken by a worker's step
        self.inboxes: list[list] = [[] for _ in range(self.peers)]
        self.offered: list[set] = [set() for _ in range(self.peers)]
        self.held: list[dict] = [{} for _ in range(self.peers)]  # each worker's notification requests
        self.open_inputs = {handle.op for handle in flow.inputs}
        self.failure: BaseException | None = None
        self.finished = False
        self.stopping = False
        self._spread = 0
        self._workers: list[Any] = []
        self._actors: list[Any] = []
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        with self.lock:
            self.tracker.update(((("op", handle.op), (0,)), 1) for handle in self.flow.inputs)
            self.events.extend(self.flow._early)
            self.pending += sum(records for _, _, records in self.flow._early)
            self.flow._early.clear()
        if self.flow.processes:
            import cloudpickle

            import plait

            blob = cloudpickle.dumps(self.plan)
            self._actors = _lend(self.peers)
            plait.get([actor.load(blob, i, self.peers) for i, actor in enumerate(self._actors)])
        else:
            self._workers = [Worker(self.plan, i, self.peers) for i in range(self.peers)]
        driver = threading.Thread(target=self._run, name="plait-stream-driver", daemon=True)
        self._threads.append(driver)
        for handle, items in self.flow._feeders:
            feeder = threading.Thread(target=self._feed, args=(handle, items), name="plait-stream-feeder", daemon=True)
            self._threads.append(feeder)
        for thread in self._threads:
            thread.start()

    def finish(self) -> None:
        """Wait until all work is done (or failed), then release the workers."""
        with self.lock:
            self.lock.wait_for(lambda: self.finished or self.failure is not None)
        self._close()
        if self.failure is not None:
            raise self.failure

    def stop(self) -> None:
        with self.lock:
            self.stopping = True
            self.lock.notify_all()
        self._close()

    def _close(self) -> None:
        driver = self._threads[0]  # feeders are left to end by themselves: an iterable may block
        if driver is not threading.current_thread():
            driver.join()
        if self._actors:
            _give_back(self._actors, healthy=self.finished and self.failure is None)
            self._actors = []

    # ------------------------------------------------------------------ inputs
    def input_event(self, op: int, event: tuple, records: int) -> None:
        with self.lock:
            self.lock.wait_for(lambda: self.pending < self.flow.max_pending or self._ended())
            self._raise_if_failed()
            self.events.append((op, event, records))
            self.pending += records
            self.lock.notify_all()

    def _feed(self, handle: Any, items: Any) -> None:
        size = min(_FEED_BATCH, self.flow.max_pending)
        try:
            batch: list = []
            for epoch, record in items:
                if epoch != handle.epoch:
                    if batch:
                        handle.send_many(batch)
                        batch = []
                    handle.advance_to(epoch)
                batch.append(record)
                if len(batch) >= size:
                    handle.send_many(batch)
                    batch = []
                if self._ended():
                    return
            if batch:
                handle.send_many(batch)
            handle.close()
        except BaseException as exc:  # noqa: BLE001  the iterable's own error, or a bad epoch
            exc.add_note(f"while feeding input {handle.name!r} from its iterable")
            self._fail(exc)

    def _absorb(self) -> None:
        """The input events so far, in order: sends become messages, advances and closes
        move the input's capability (in one batch with the sends before them)."""
        changes: list = []
        while self.events:
            op, event, _ = self.events.popleft()
            kind, epoch = event[0], (event[1],)
            if kind == "send":
                for target, port, pact in self.consumers.get((op, 0), ()):
                    if pact is PIPELINE or pact.kind == "pipeline":
                        here = self._spread = (self._spread + 1) % self.peers  # spread over the workers
                        shares = [(here, event[2])]
                    else:
                        shares = split(event[2], pact, self.peers, 0)
                    for worker, records in shares:
                        self._deliver(worker, (target, port, epoch, records), changes)
                self.pending -= len(event[2])
            else:
                changes.append(((("op", op), epoch), -1))
                if kind == "advance":
                    changes.append(((("op", op), (event[2],)), 1))
                else:
                    self.open_inputs.discard(op)
        if changes:
            self.tracker.update(changes)

    def _deliver(self, worker: int, message: tuple, changes: list) -> None:
        self.inboxes[worker].append(message)
        self.pending += len(message[3])
        changes.append(((("in", message[0], message[1]), message[2]), 1))

    # ------------------------------------------------------------------ rounds
    def _run(self) -> None:
        """Rounds until all work is done. Worker processes run side by side and apart: a
        worker whose step has come back is given its next one at once, whatever the
        others are doing (in-process workers take their steps in turn)."""
        running: dict[Any, int] = {}  # a worker process's step under way -> the worker
        try:
            while True:
                with self.lock:
                    if self.stopping or self.failure is not None:
                        return
                    self._absorb()
                    self._offer()
                    batches = self._take(busy=set(running.values()))
                    if not batches and not running:
                        if not self.open_inputs and not self.events:
                            if not self.tracker.idle():
                                raise StreamError(
                                    "internal error: the dataflow has no work left but pointstamps "
                                    f"remain counted: {sorted(self.tracker.counts.items())[:10]}"
                                )
                            self.finished = True
                            self.lock.notify_all()
                            return
                        self.lock.notify_all()
                        self.lock.wait()
                        continue
                if self._workers:
                    results = [(index, self._workers[index].step(messages, notes)) for index, messages, notes in batches]
                else:
                    import plait

                    for index, messages, notes in batches:
                        running[self._actors[index].step(_pack((messages, notes)))] = index
                    idle = len(running) < self.peers  # then input for an idle worker should not wait long
                    done, _ = plait.wait(list(running), num_returns=1, timeout=_POLL_S if idle else None)
                    results = [(running.pop(future), pickle.loads(future.result())) for future in done]
                self._apply(results)
        except BaseException as exc:  # noqa: BLE001  an operator's error ends the dataflow
            self._fail(exc)

    def _apply(self, results: list[tuple[int, tuple]]) -> None:
        """Steps that came back: their captured records kept (a sink's function called),
        then their messages queued and their pointstamp changes applied, a step at a time."""
        outputs = [(self.flow._outputs[op], t, records) for _, (_, out, _) in results for op, t, records in out]
        for output, time, records in outputs:
            if isinstance(output, Sink):
                output.add(time, records)  # the user's function, outside the lock
        with self.lock:
            for output, time, records in outputs:
                if not isinstance(output, Sink):
                    output.add(time, records)
            for index, (outgoing, _, changes) in results:
                for worker, message in outgoing:
                    self.inboxes[worker].append(message)
                    self.pending += len(message[3])
                self._note_requests(index, changes)
                self.tracker.update(changes)
            self.lock.notify_all()

    def _offer(self) -> None:
        """Each complete notification request, to the workers that asked for it."""
        complete: dict = {}
        for index, held in enumerate(self.held):
            for pointstamp in held:
                done = complete.get(pointstamp)
                if done is None:
                    (_, op), time = pointstamp
                    done = complete[pointstamp] = not self.tracker.could_result_in(op, time)
                if done:
                    self.offered[index].add((pointstamp[0][1], pointstamp[1]))

    def _note_requests(self, index: int, changes: list) -> None:
        held = self.held[index]
        for pointstamp, delta in changes:
            if pointstamp[0][0] == "op":
                count = held.get(pointstamp, 0) + delta
                if count:
                    held[pointstamp] = count
                else:
                    del held[pointstamp]
                    self.offered[index].discard((pointstamp[0][1], pointstamp[1]))

    def _take(self, busy: set[int]) -> list[tuple[int, list, list]]:
        """The messages and notifications each worker not ``busy`` runs next: all of
        them, or under a random schedule a random part, in a random order."""
        batches = []
        rng = self.random
        for index in range(self.peers):
            if index in busy:
                continue
            inbox, offered = self.inboxes[index], self.offered[index]
            if not inbox and not offered:
                continue
            if rng is None:
                messages, notes = inbox, list(offered)
                self.inboxes[index] = []
            else:
                if rng.random() < 0.3:
                    continue  # this worker is slow this round
                rng.shuffle(inbox)
                cut = rng.randint(0, len(inbox))
                messages, self.inboxes[index] = inbox[:cut], inbox[cut:]
                in_order = sorted(offered, key=lambda n: n[1])  # any part, but earliest first
                notes = in_order[: rng.randint(0, len(in_order))]
            offered.difference_update(notes)
            if messages or notes:
                self.pending -= sum(len(m[3]) for m in messages)
                batches.append((index, messages, notes))
        if not batches and rng is not None and (any(self.inboxes) or any(self.offered)):
            return self._take(busy)  # a random schedule delays work, but never stalls
        return batches

    # ------------------------------------------------------------------ progress, for outputs
    def complete(self, op: int, epoch: int) -> bool:
        with self.lock:
            self._raise_if_failed()
            return self.finished or not self.tracker.could_result_in(op, (epoch,))

    def frontier(self, op: int) -> list[int]:
        with self.lock:
            return sorted({t[0] for t in self.tracker.frontier(op)})

    def wait_complete(self, op: int, epoch: int, timeout: float | None) -> bool:
        with self.lock:
            done = self.lock.wait_for(
                lambda: self._ended() or not self.tracker.could_result_in(op, (epoch,)), timeout
            )
            self._raise_if_failed()
            return bool(done)

    # ------------------------------------------------------------------ failure
    def _ended(self) -> bool:
        return self.finished or self.stopping or self.failure is not None

    def _fail(self, exc: BaseException) -> None:
        with self.lock:
            if self.failure is None:
                self.failure = exc
            self.lock.notify_all()

    def _raise_if_failed(self) -> None:
        if self.failure is not None:
            raise StreamError(f"the dataflow failed: {type(self.failure).__name__}: {self.failure}") from self.failure
