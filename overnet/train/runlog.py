"""The run folder's text files: config.json and the CSV log (rank 0 only)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from overnet._atomic import write_text_atomic

#: Columns of log.csv; val_psnr / bicubic_psnr are empty on steps without validation.
COLUMNS = ("step", "loss", "lr", "val_psnr", "bicubic_psnr", "patches_per_s", "elapsed_s")


def write_json(path: Path, data: dict) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


class CsvLog:
    """Append-only CSV of training progress; rows after a resumed step are dropped."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def start(self, resume_step: int | None) -> None:
        """New log (``None``) or keep rows up to ``resume_step``: steps after the last
        checkpoint were undone by the kill and will be logged again."""
        rows = self.read() if resume_step is not None and self.path.exists() else []
        kept = [r for r in rows if int(r["step"]) <= (resume_step or 0)]
        lines = [",".join(COLUMNS)]
        lines += [",".join(r.get(c, "") for c in COLUMNS) for r in kept]
        write_text_atomic(self.path, "\n".join(lines) + "\n")

    def append(self, **values: float | int | None) -> None:
        cells = [_cell(values.get(c)) for c in COLUMNS]
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(",".join(cells) + "\n")
            fh.flush()

    def read(self) -> list[dict[str, str]]:
        with open(self.path, encoding="utf-8", newline="") as fh:
            return list(csv.DictReader(fh))


def _cell(value: float | int | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, int):
        return str(value)
    return f"{value:.8g}"
