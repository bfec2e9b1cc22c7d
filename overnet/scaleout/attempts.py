"""Bounded attempts per file across actor deaths: the poison-file record.

Ray Data restarts a dead actor and retries its task without limit (``max_restarts=-1``,
``max_task_retries=-1``), which is right for a lost node but never ends for a file that
kills its actor each time (out of memory on a huge image, a crash in a codec). So every
actor asks the run's :class:`AttemptLedger` (one small Ray actor next to the driver)
before it starts a file: the ledger records the attempt, and an attempt that was begun and
never ended is one whose worker died. A file whose worker died ``max_attempts`` times is
not started again: the actor settles it as failed with the reason, and the task, and so
the job, goes on with the rest. Files that finished in a retried task are not charged:
their attempts ended.

The driver copies new attempts into the manifest as ``started`` records (every
``POLL_S``). A driver that ends, even interrupted, drops them when it compacts the
manifest; one that dies with its node (a poison file can take a whole machine) leaves
them, and a rerun counts a file whose last record is ``started`` as that many deaths.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: default --max-attempts: a lost node costs a file one attempt, a poison file three
DEFAULT_MAX_ATTEMPTS = 3
#: seconds between the driver's copies of new attempts into the manifest
POLL_S = 0.5


@dataclass
class Where:
    """Which worker ran an attempt (Ray actor id, host, pid, Ray node id)."""

    actor: str = ""
    host: str = ""
    pid: int = 0
    node: str = ""

    def text(self) -> str:
        return f"actor {self.actor[:12] or '?'} pid {self.pid} on {self.host or '?'}"


@dataclass
class AttemptLedger:
    """Attempts per input: begun, ended, and the ones whose worker died."""

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    died: dict[str, int] = field(default_factory=dict)  # input -> attempts that died
    open: dict[str, Where] = field(default_factory=dict)  # input -> running attempt
    last_death: dict[str, str] = field(default_factory=dict)  # input -> where it died
    begun: list[dict[str, Any]] = field(default_factory=list)  # not yet drained

    def begin(self, name: str, where: Where) -> tuple[int, str]:
        """Record an attempt on ``name`` before it starts: (its number, ""), or (deaths,
        the failure reason) when its worker already died ``max_attempts`` times."""
        if name in self.open:  # begun before, never ended: that worker died on it
            self.died[name] = self.died.get(name, 0) + 1
            self.last_death[name] = self._death(self.open.pop(name))
        died = self.died.get(name, 0)
        if died >= self.max_attempts:
            last = self.last_death.get(name, "in an earlier run")
            return died, (
                f"{name}: worker died {died} time(s) while on this file (out of memory? a "
                f"crash in a decoder or the model?); last: {last}; not tried again "
                f"(--max-attempts {self.max_attempts}); the worker's log is in Ray's logs"
            )
        self.open[name] = where
        self.begun.append({"input": name, "attempts": died + 1, **where.__dict__})
        return died + 1, ""

    def end(self, name: str) -> None:
        """The attempt on ``name`` finished (done or failed by an exception)."""
        self.open.pop(name, None)

    def drain(self) -> list[dict[str, Any]]:
        """Attempts begun since the last call (for the manifest)."""
        begun, self.begun = self.begun, []
        return begun

    @staticmethod
    def _death(where: Where) -> str:
        """Where an attempt died, whether its whole node was lost, and how Ray saw the
        worker exit (asked of Ray's GCS)."""
        lost = ""
        try:
            import ray

            nodes = {n["NodeID"]: n["Alive"] for n in ray.nodes()}
            if where.node and nodes.get(where.node) is False:
                lost = ", whose Ray node was lost"
        except Exception:  # outside Ray (tests call the ledger directly)
            pass
        exit_text = _worker_exit(where)
        return where.text() + lost + (f" (Ray: {exit_text})" if exit_text else "")


def _worker_exit(where: Where) -> str:
    """Ray's record of how the worker process ``where`` ended ("" when not known):
    its exit type and the first sentences of the detail, e.g. "SYSTEM_ERROR: Worker
    unexpectedly exits with a connection error code 2. End of file."

    Ray's public state API needs the dashboard, which a local run leaves off, so this
    reads the GCS worker table through Ray's private accessor; any change there only
    loses this detail."""
    try:
        from ray._private import state
        from ray.core.generated import common_pb2, gcs_pb2

        for raw in state.state._global_state_accessor.get_worker_table():
            worker = gcs_pb2.WorkerTableData.FromString(raw)
            node = worker.worker_address.node_id.hex()
            if worker.pid != where.pid or (where.node and node and node != where.node):
                continue
            detail = worker.exit_detail.split(" Some common causes")[0].strip()
            kind = common_pb2.WorkerExitType.Name(worker.exit_type)
            return f"{kind}: {detail}"[:300] if detail else kind
    except Exception:  # not connected to Ray, or Ray changed its private layout
        return ""
    return ""
