"""What a video run did: one result per file and a summary for people."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from overnet.jobs.boundary import failure_line
from overnet.units import format_bytes


@dataclass
class VideoResult:
    """One video: ``status`` is "done", "skipped" (output exists) or "failed"."""

    input: Path
    output: Path | None
    status: str
    error: str = ""
    frames_in: int = 0  # decoded (within --start/--duration/--frames)
    frames_out: int = 0  # encoded
    damaged: int = 0  # packets that failed to decode, frames the decoder flagged
    dropped: int = 0  # frames with a repeated or backwards timestamp
    missing: int = 0  # frames the header announced that the file does not hold
    seconds: float = 0.0
    bytes: int = 0
    source: str = ""  # "960x540 h264 yuv420p 25 fps"
    encoding: str = ""  # "libx264 yuv420p (crf 18, preset medium)"
    size: tuple[int, int] | None = None  # output width, height
    notes: list[str] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames_out / self.seconds if self.seconds > 0 else 0.0

    def describe(self) -> str:
        """Two or more lines: what went in, what came out, and any notes."""
        if self.status == "failed":
            return failure_line(str(self.input), self.error)
        if self.status == "skipped":
            return f"  skipped: {self.input} (output exists: {self.output})"
        size = f"{self.size[0]}x{self.size[1]} " if self.size else ""
        lines = [
            f"  {self.input} ({self.source}) -> {self.output} ({size}{self.encoding})",
            f"    {self.frames_in} frames in, {self.frames_out} out, {self.damaged} damaged, "
            f"{self.dropped} dropped, {self.missing} missing; {self.fps:.3g} fps, "
            f"{self.seconds:.1f} s, {format_bytes(self.bytes)}",
        ]
        lines += [f"    note: {note}" for note in self.notes]
        return "\n".join(lines)


@dataclass
class VideoReport:
    results: list[VideoResult] = field(default_factory=list)
    seconds: float = 0.0
    removed_temps: list[Path] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def ok(self) -> bool:
        return self.count("failed") == 0

    def summary(self) -> str:
        frames = sum(r.frames_out for r in self.results)
        rate = frames / self.seconds if self.seconds > 0 else 0.0
        lines = [
            f"{self.count('done')} video(s) upscaled, {self.count('skipped')} skipped (output "
            f"exists; --overwrite to redo), {self.count('failed')} failed: {frames} frames in "
            f"{self.seconds:.1f} s ({rate:.3g} fps)"
        ]
        lines += [r.describe() for r in self.results]
        if self.removed_temps:
            lines.append(f"removed {len(self.removed_temps)} stale temp file(s) of an earlier run:")
            lines += [f"  {p}" for p in self.removed_temps]
        return "\n".join(lines)
