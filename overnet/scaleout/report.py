"""What a Ray run did: files done/skipped/failed, images/s, and each actor's throughput."""

from __future__ import annotations

from dataclasses import dataclass, field

from overnet.jobs.boundary import failure_line
from overnet.scaleout.manifest import Record


@dataclass
class ActorFigures:
    """One Ray actor (its id survives restarts; each restart shows as a new pid)."""

    actor: str
    host: str
    pids: list[int] = field(default_factory=list)
    files: int = 0
    seconds: float = 0.0  # busy in the actor: decode, model, encode

    @property
    def rate(self) -> float:
        return self.files / self.seconds if self.seconds > 0 else 0.0


@dataclass
class ScaleoutReport:
    records: list[Record] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # inputs that matched nothing
    seconds: float = 0.0  # wall time of the Ray dataset (0 when nothing was left to do)
    actors: int = 0  # actors asked for (0: Ray was not needed)
    manifest: str = ""
    sessions: set[str] = field(default_factory=set)  # what the actors ran (describe())
    removed_temps: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.records)

    @property
    def ok(self) -> bool:
        return not self.problems and self.count("failed") == 0

    @property
    def rate(self) -> float:
        """Files upscaled per second of the run's wall time."""
        return self.count("done") / self.seconds if self.seconds > 0 else 0.0

    def per_actor(self) -> list[ActorFigures]:
        figures: dict[str, ActorFigures] = {}
        for record in self.records:
            if record.status != "done" or not record.pid:
                continue
            key = record.actor or f"{record.host}:{record.pid}"
            entry = figures.setdefault(key, ActorFigures(key, record.host))
            if record.pid not in entry.pids:
                entry.pids.append(record.pid)
            entry.files += 1
            entry.seconds += record.seconds
        return sorted(figures.values(), key=lambda f: (f.host, f.actor))

    def summary(self) -> str:
        done = self.count("done")
        unit = "files" if any(_is_video(r) for r in self.records) else "images"
        lines = [
            f"{done} upscaled, {self.count('skipped')} skipped (done before, or output exists; "
            f"--overwrite to redo), {self.count('failed')} failed in {self.seconds:.1f} s "
            f"({self.rate:.3g} {unit}/s) on {self.actors} Ray actor(s)"
        ]
        for session in sorted(self.sessions):
            lines.append(f"  ran: {session}")
        for f in self.per_actor():
            pids = ", ".join(str(p) for p in f.pids)
            again = f", restarted {len(f.pids) - 1}x" if len(f.pids) > 1 else ""
            lines.append(
                f"  actor {f.actor[:12]} on {f.host} (pid {pids}{again}): {f.files} file(s), "
                f"{f.seconds:.1f} s busy, {f.rate:.3g} {unit}/s"
            )
        again = sum(r.attempts > 1 for r in self.records if r.status != "failed")
        if again:
            lines.append(f"  {again} file(s) done on a later attempt after a worker died")
        lines += [failure_line(r.input, r.error) for r in self.records if r.status == "failed"]
        lines += [f"  input: {p}" for p in self.problems]
        if self.removed_temps:
            lines.append(f"removed {len(self.removed_temps)} stale temp file(s) of killed writers")
        if self.manifest:
            lines.append(f"manifest: {self.manifest}")
        return "\n".join(lines)


def _is_video(record: Record) -> bool:
    from overnet.video.probe import VIDEO_SUFFIXES

    return record.input.lower().endswith(VIDEO_SUFFIXES)
