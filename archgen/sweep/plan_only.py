"""A plan-only sweep, run in this process without a launcher."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from archgen.sweep.expand import parse_overrides, split_variants
from archgen.sweep.job import _run_variant, run_job
from archgen.sweep.options import SweepOptions
from archgen.sweep.overrides import variant_config


def plan_sweep(data: dict, overrides: Sequence[str], sweep_dir: Path, options: SweepOptions) -> list[dict] | None:
    """A plan-only sweep in this process: Hydra's override parser and sweep expansion, without a
    launcher's per-job composition (~0.15 s a job). None when the sweep needs a launcher, config
    groups or a defaults list; ``hydra_sweep`` runs those.

    Each variant's ``++key=value`` overrides are applied to a plain copy of the data, as Hydra's
    ``OmegaConf.update(..., merge=True)`` applies them; any other form, or a value with an
    interpolation, goes through OmegaConf itself. By default the variants write nothing but their
    row (results.csv/json); ``--job-files`` adds Hydra's folder per variant.
    """
    from archgen.config.load import schema_overrides

    parsed = parse_overrides(schema_overrides(overrides))
    if "defaults" in data or any(o.key_or_group.startswith("hydra") or o.package is not None
                                 or "/" in o.key_or_group or (o.is_sweep_override() and not o.is_discrete_sweep())
                                 for o in parsed):
        return None
    variants = split_variants(parsed)
    rows = []
    for num, variant in enumerate(variants):
        out = sweep_dir / str(num)

        def variant_job(variant=variant, out=out) -> dict[str, Any]:
            config = variant_config(data, variant)
            if options.job_files:
                _write_hydra_files(out, config, variant)
            return _run_variant(config, out, "summary", options)

        rows.append(run_job(num, variant, out, variant_job, not options.lines, options.swept,
                            files=options.job_files))
    return rows


def _write_hydra_files(out: Path, config: dict, variant: Sequence[str]) -> None:
    """A job's config and overrides, saved as Hydra saves them."""
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    (out / ".hydra").mkdir(parents=True, exist_ok=True)
    (out / ".hydra" / "config.yaml").write_text(yaml.dump(config, Dumper=dumper, sort_keys=False))
    (out / ".hydra" / "overrides.yaml").write_text(yaml.dump(list(variant), Dumper=dumper))
