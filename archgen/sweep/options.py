"""What the command line asks of every variant of a sweep."""

from __future__ import annotations

from dataclasses import dataclass, field

from archgen.planner.guard import DEFAULT_MAX_VARIANTS


@dataclass
class SweepOptions:
    """What the command line asked of every variant; it travels to the jobs inside ``SweepTask``."""

    quiet: bool = False
    force: bool = False
    max_variants: int = DEFAULT_MAX_VARIANTS
    formats: list[str] = field(default_factory=lambda: ["keras"])
    precision: str = "float32"
    max_params: float | None = None
    max_memory: float | None = None
    swept: list[str] = field(default_factory=list)  # the keys with several values: a column each
    lines: bool = True  # a line on stderr per finished job (off while a progress bar shows)
    json: bool = False  # one JSON object on stdout instead of the table
    wide: bool = False  # the table with every column and exact numbers
    job_files: bool = False  # plan-only sweeps: a folder per variant too (launcher sweeps always have one)
    train: dict | None = None  # archgen train -m: data folder, steps, back end (archgen.train.sweep)
