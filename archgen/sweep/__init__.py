"""Hydra multirun sweeps: one job per variant, one results table at the end.

Hydra itself runs the sweep (its sweeper and whichever launcher is selected: basic,
joblib, submitit, ray). Each job catches its own errors and writes ``result.json`` into its
Hydra output folder; the main process reads them back, so a failing or killed variant is a
row in the table and never stops the others. The config file reaches Hydra only as the
checked mapping archgen read (``archgen.config.load.store_config``), never as a file.

Modules, each importing only those above it:
``options`` (what the command line asked), ``expand`` (overrides into variants),
``overrides`` (a variant's config), ``job`` (one variant, in whichever process runs it),
``results`` (rows read back, written, shown), ``progress`` (the live bar), ``plan_only``
(a plan-only sweep in this process), ``launch`` (through Hydra's launcher, mended when
workers die), ``run`` (the command).
"""

from archgen.sweep.expand import expand_variants, parse_overrides, parsed_override, swept_keys, swept_values
from archgen.sweep.job import RESULT, STARTED, SweepTask, run_job, set_row_listener, sweep_job
from archgen.sweep.launch import hydra_sweep
from archgen.sweep.options import SweepOptions
from archgen.sweep.overrides import variant_config
from archgen.sweep.plan_only import plan_sweep
from archgen.sweep.progress import SweepProgress
from archgen.sweep.results import COLUMNS, TABLE_ROWS, collect_results, print_results, sweep_json, write_results
from archgen.sweep.run import run_sweep

__all__ = [
    "COLUMNS", "RESULT", "STARTED", "TABLE_ROWS", "SweepOptions", "SweepProgress", "SweepTask", "collect_results",
    "expand_variants", "hydra_sweep", "parse_overrides", "parsed_override", "plan_sweep", "print_results",
    "run_job", "run_sweep", "set_row_listener", "sweep_job", "sweep_json", "swept_keys", "swept_values",
    "variant_config", "write_results",
]
