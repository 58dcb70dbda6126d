"""A rich table of the Plan that reads like the diagram: encoder down, bottleneck, decoder up, heads."""

from __future__ import annotations

from itertools import groupby

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from archgen.planner.build import AXIS_NAMES
from archgen.errors import printable
from archgen.planner.cost import Cost, fmt_bytes
from archgen.planner.ir import LayerPlan, Plan
from archgen.report.backbone import backbone_lines
from archgen.kinds import kind_of
from archgen.report.data import fmt_shape, group_title, legal_sizes
from archgen.report.table import Col, fit_table, print_fitted, wrap_parts


def fmt_count(n: int | None) -> str:
    if n is None:
        return "?"
    for unit, scale in (("T", 10**12), ("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(n)


def fmt_short(n: int | None) -> str:
    """A count in at most 6 characters for narrow tables: ``31030658`` -> ``31.0M``, ``640`` -> ``640``."""
    if n is None:
        return "?"
    if n < 1000:
        return str(n)
    units = (("k", 10**3), ("M", 10**6), ("G", 10**9), ("T", 10**12), ("P", 10**15))
    for i, (unit, scale) in enumerate(units):
        text = f"{n / scale:.1f}"
        if float(text) < 1000 or i == len(units) - 1:
            return text + unit
    return str(n)  # unreachable


def fmt_exact(n: int | None) -> str:
    return "?" if n is None else f"{n:,}"


def _note(layer: LayerPlan) -> str:
    return kind_of(layer.kind).note(layer)


SUMMARY_LAYOUTS = (  # richest first: drop the note, then shorten numbers, then drop the kind
    ("layer", "kind", "output", "params", "FLOPs", "note"),
    ("layer", "kind", "output", "params", "FLOPs"),
    ("layer", "kind", "output", "params~", "FLOPs~"),
    ("layer", "output", "params~", "FLOPs~"),
)


def summary_columns(plan: Plan, wide: bool = False) -> tuple[dict[str, Col], set[int]]:
    """Every column the summary can show (``params~``: shortened), one row per layer and group."""
    names: list[Text] = []
    kinds: list[str | None] = []
    shapes: list[str | None] = []
    params: list[Text | str | None] = []
    short_params: list[Text | str | None] = []
    flops: list[Text | str | None] = []
    short_flops: list[Text | str | None] = []
    notes: list[str | None] = []
    sections: set[int] = set()
    for group, layers in groupby(plan.layers, key=lambda layer: layer.group):
        names.append(Text(group_title(group), style="bold"))
        for column in (kinds, shapes, params, short_params, flops, short_flops, notes):
            column.append(None)
        for layer in layers:
            names.append(Text("  " + layer.name))
            kinds.append(layer.kind)
            shapes.append(fmt_shape(layer.shape))
            params.append(f"{layer.params:,}")
            short_params.append(fmt_short(layer.params))
            flops.append(fmt_exact(layer.flops) if wide else fmt_count(layer.flops))
            short_flops.append(fmt_short(layer.flops))
            notes.append(_note(layer))
        sections.add(len(names) - 1)
    names.append(Text("total", style="bold"))
    kinds.append(None)
    shapes.append(None)
    params.append(Text(f"{plan.total_params:,}", style="bold"))
    short_params.append(Text(fmt_short(plan.total_params), style="bold"))
    flops.append(Text(fmt_exact(plan.total_flops) if wide else fmt_count(plan.total_flops), style="bold"))
    short_flops.append(Text(fmt_short(plan.total_flops), style="bold"))
    notes.append(None)
    cols = {
        "layer": Col("layer", "layer", names, style="cyan", fold=8),
        "kind": Col("kind", "kind", kinds),
        "output": Col("output", "output", shapes, justify="right"),
        "params": Col("params", "params", params, justify="right"),
        "params~": Col("params", "params", short_params, justify="right"),
        "FLOPs": Col("FLOPs", "FLOPs", flops, justify="right"),
        "FLOPs~": Col("FLOPs", "FLOPs", short_flops, justify="right"),
        "note": Col("note", "note", notes, style="dim"),
    }
    return cols, sections


def summary_table(plan: Plan, width: int | None = None, wide: bool = False) -> tuple[Table, int]:
    """The summary table fitted to ``width`` columns (None or ``wide``: every column, exact numbers)."""
    cols, sections = summary_columns(plan, wide)
    layouts = SUMMARY_LAYOUTS[:1] if wide or width is None else SUMMARY_LAYOUTS
    # A fold of the layer names is the last resort, after every column but the numbers is gone.
    fitted = [[Col(**{**cols[k].__dict__, "fold": None}) for k in layout] for layout in layouts]
    fitted.append([cols[k] for k in layouts[-1]])
    return fit_table(Text(plan.name, style="bold"), fitted if not wide else fitted[:1], None if wide else width,
                     sections)


def cost_lines(cost: Cost) -> list[str]:
    from archgen.planner.profiles import DEFAULT, profile_named

    profile = profile_named(cost.profile)
    # "update": the optimizer's state and the temporaries of its update (parameter-sized) where the profile has them
    update = "update" if profile.update_buffers else "state"
    lines = [
        f"memory (batch {cost.batch}, {cost.dtype}): weights {fmt_bytes(cost.weight_bytes)}; "
        f"activations {fmt_bytes(cost.activation_bytes)}; inference peak {fmt_bytes(cost.inference_peak_bytes)}",
        f"training estimate {fmt_bytes(cost.training_bytes)} (weights + gradients + {cost.optimizer} {update} "
        f"+ activations at the step's peak + {profile.runtime_label})",
        receptive_field_line(cost.receptive_fields),
    ]
    return lines if profile == DEFAULT else [*lines[:2], profile.note(), *lines[2:]]


def receptive_field_line(fields: tuple[int, ...]) -> str:
    if len(set(fields)) == 1:
        return f"receptive field {fields[0]} per spatial axis"
    names = AXIS_NAMES[len(fields)]
    return f"receptive field {' x '.join(map(str, fields))} ({' x '.join(names)})"


def print_fit(fit: dict, console: Console) -> None:
    budget = fmt_bytes(fit["budget_bytes"])
    lines = []
    if fit["max_batch"] is not None:
        lines.append(f"fits {budget} ({fit['dtype']}, {fit['optimizer']}): training batch up to "
                     f"{fit['max_batch']} at {fmt_shape(fit['at_input_shape'])}")
    if fit["max_input_shape"] is None:
        lines.append(f"at batch {fit['batch']} not even the smallest legal input fits {budget}")
    else:
        lines.append(f"at batch {fit['batch']} the largest legal input that fits {budget} is "
                     f"{fmt_shape(fit['max_input_shape'])} ({fmt_bytes(fit['max_input_training_bytes'])})")
    for line in lines:
        for part in wrap_parts([line], max(console.width, 40)):
            console.print(part, markup=False, highlight=False)


def footer_lines(plan: Plan) -> list[str]:
    lines = [f"input {fmt_shape(plan.input_shape)} -> "
             + ", ".join(f"{head} {fmt_shape(shape)}" for head, shape in plan.output_shapes.items())]
    lines.append(f"params {plan.total_params:,}; FLOPs {fmt_count(plan.total_flops)} (2 x multiply-adds, one sample)")
    rule = plan.sizes
    if rule is not None:
        names = "/".join(AXIS_NAMES[plan.ndim])
        outs = "; ".join(f"{head}: {rule.describe_output(head, 'n')}" for head in rule.outputs)
        firsts = ", ".join(map(str, rule.smallest(4)))
        lines.append(f"legal sizes ({names}): {rule.describe('n')} ({firsts}, ...); output {outs}")
    elif plan.axis_sizes and all(r is not None for r in plan.axis_sizes):  # anisotropic: a rule per axis
        for name, axis_rule in zip(AXIS_NAMES[plan.ndim], plan.axis_sizes):
            firsts = ", ".join(map(str, axis_rule.smallest(4)))
            lines.append(f"legal sizes ({name}): {axis_rule.describe(name)} ({firsts}, ...)")
    lines += backbone_lines(plan)
    return lines


def print_summary(plan: Plan, console: Console, cost: Cost | None = None, wide: bool = False) -> None:
    table, width = summary_table(plan, console.width, wide)
    print_fitted(console, table, width)
    for line in footer_lines(plan) + (cost_lines(cost) if cost else []):
        for part in wrap_parts(line.split("; "), max(console.width, 40)):
            console.print(part, highlight=False, markup=False)


def print_sizes(plan: Plan, count: int, console: Console) -> None:
    """The first legal sizes of an axis and what each head makes of them."""
    data = legal_sizes(plan, count)
    if data["rule"] is None:
        console.print("no rule for legal sizes could be derived for this network")
        return
    console.print(f"legal sizes per spatial axis: {data['rule']}")
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("input", justify="right")
    for head in plan.outputs:
        table.add_column(f"{head} output", justify="right")
    for row in data["sizes"]:
        table.add_row(str(row["input"]), *(str(v) for v in row["outputs"].values()))
    console.print(table)


# --- sweep results --------------------------------------------------------------------------------

SWEEP_LAYOUTS = (  # richest first: drop seconds, shorten numbers, drop activations, then FLOPs
    ("job", "*", "status", "params", "output", "FLOPs", "activations", "seconds"),
    ("job", "*", "status", "params", "output", "FLOPs", "activations"),
    ("job", "*", "status", "params~", "output", "FLOPs~", "activations"),
    ("job", "*", "status", "params~", "output", "FLOPs~"),
    ("job", "*", "status", "params~", "output"),
    # no room for a column per swept key: one column, a line per key
    ("job", "variant", "status", "params~", "output", "FLOPs~"),
    ("job", "variant", "status", "params~", "output"),
)
FAILED = ("error", "crash", "killed")


def fmt_value(value: object) -> str:
    """A swept value as a table cell: ``[32, 32, 1]`` -> ``[32,32,1]``, ``None`` -> ``null``."""
    import json

    if isinstance(value, str):
        return printable(value, 200)
    try:
        return printable(json.dumps(value, separators=(",", ":")), 200)
    except (TypeError, ValueError):
        return printable(str(value), 200)


def sweep_order(rows: list[dict]) -> list[dict]:
    """Finished variants by job, then the failed ones by job."""
    return sorted(rows, key=lambda r: (r.get("status") != "ok", r.get("job", 0)))


def sweep_columns(rows: list[dict], swept: list[str], wide: bool = False) -> dict[str, Col]:
    ok = [r.get("status") == "ok" for r in rows]
    cols = {
        "job": Col("job", "job", [str(r.get("job", "")) for r in rows], justify="right"),
        "status": Col("status", "status", [Text("ok") if good else
                                           Text(printable(str(r.get("status")), 20), style="red")
                                           for r, good in zip(rows, ok)]),
        "params": Col("params", "params", [fmt_exact(r.get("total_params")) if good else None
                                           for r, good in zip(rows, ok)], justify="right"),
        "params~": Col("params", "params", [fmt_short(r.get("total_params")) if good else None
                                            for r, good in zip(rows, ok)], justify="right"),
        "output": Col("output", "output", [", ".join(fmt_shape(s) for s in r.get("outputs", {}).values()) or None
                                           for r in rows], justify="right",
                      fold=max([len(fmt_shape(s)) for r in rows for s in r.get("outputs", {}).values()] + [6])),
        "FLOPs": Col("FLOPs", "FLOPs", [(fmt_exact if wide else fmt_count)(r.get("total_flops")) if good else None
                                        for r, good in zip(rows, ok)], justify="right"),
        "FLOPs~": Col("FLOPs", "FLOPs", [fmt_short(r.get("total_flops")) if good else None
                                         for r, good in zip(rows, ok)], justify="right"),
        "activations": Col("activations", "activations", [fmt_bytes(r.get("activation_bytes")) if good else None
                                                          for r, good in zip(rows, ok)], justify="right"),
        "seconds": Col("seconds", "seconds", [f"{r.get('seconds', 0):.2f}" for r in rows], justify="right"),
    }
    for key in swept:
        values = [fmt_value(r["swept"][key]) if key in r.get("swept", {}) else None for r in rows]
        # Values are whole; a long dotted header folds at its dots down to the widest value.
        header = printable(key, 60)
        segments = header.replace(".", ".\0").split("\0")
        widest = max([cell_len(v) for v in values if v is not None] + [max(map(cell_len, segments)), 1])
        cols["=" + key] = Col("=" + key, header, values, fold=min(widest, cell_len(header)))
    # One cell per variant, a key=value line per swept key and a blank line after (rows stay apart).
    cols["variant"] = Col("variant", "variant", [
        "\n".join(f"{printable(k, 60)}={fmt_value(r['swept'][k])}" for k in swept if k in r.get("swept", {}))
        + ("\n" if i < len(rows) - 1 else "") for i, r in enumerate(rows)])
    return cols


def sweep_table(rows: list[dict], swept: list[str], title: str, width: int | None,
                wide: bool = False) -> tuple[Table, int]:
    """One row per variant (finished first, then failures, each by job) fitted to ``width``."""
    rows = sweep_order(rows)
    cols = sweep_columns(rows, swept, wide)
    first_failure = next((i for i, r in enumerate(rows) if r.get("status") != "ok"), None)
    sections = {first_failure - 1} if first_failure else set()
    layouts = SWEEP_LAYOUTS[:1] if wide or width is None else SWEEP_LAYOUTS
    fitted = []
    for layout in layouts:
        keys = [k for name in layout for k in (["=" + s for s in swept] if name == "*" else [name])]
        fitted.append([cols[k] for k in keys])
    return fit_table(Text(title), fitted, None if wide else width, sections)


def failure_lines(row: dict) -> list[str]:
    """What the table says of a failed variant: its error's first line and the nearest legal sizes."""
    lines = [line.strip() for line in str(row.get("error") or "").splitlines() if line.strip()]
    shown = lines[:1] + [line for line in lines[1:] if "nearest" in line][:1]
    return [printable(line, 2000) for line in shown]


def print_sweep(rows: list[dict], swept: list[str], fixed: list[str], title: str, console: Console,
                wide: bool = False) -> None:
    table, width = sweep_table(rows, swept, title, console.width, wide)
    if fixed:
        for line in wrap_parts(["every variant: " + " ".join(printable(f) for f in fixed)], max(console.width, 40)):
            console.print(Text(line), highlight=False)  # typed overrides: no markup, no :emoji: codes
    print_fitted(console, table, width)
    failed = [r for r in sweep_order(rows) if r.get("status") != "ok"]
    if failed:
        console.print(Text(f"{len(failed)} failed:", style="bold red"))
        for row in failed:
            head = f"  job {row.get('job')}"
            values = " ".join(f"{k}={fmt_value(v)}" for k, v in row.get("swept", {}).items())
            line = f"{head} ({printable(str(row.get('status')), 20)})" + (f": {values}" if values else "")
            under = " " * (line.find(": ") if values else 2)  # continuation lines start under the values
            for part in wrap_parts([line], max(console.width, 40), indent=under):  # breaks between values only
                console.print(Text(part))
            for line in failure_lines(row):
                for part in wrap_parts([line], max(console.width, 40) - 4):
                    console.print(Text("    " + part, style="red"))
