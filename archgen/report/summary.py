"""A rich table of the Plan that reads like the diagram: encoder down, bottleneck, decoder up, heads."""

from __future__ import annotations

from itertools import groupby

from rich import box
from rich.console import Console
from rich.table import Table

from archgen.planner.build import AXIS_NAMES
from archgen.planner.cost import Cost, fmt_bytes
from archgen.planner.ir import LayerPlan, Plan
from archgen.report.data import fmt_shape, group_title, legal_sizes


def fmt_count(n: int | None) -> str:
    if n is None:
        return "?"
    for unit, scale in (("T", 10**12), ("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(n)


def _note(layer: LayerPlan) -> str:
    a = layer.attrs
    if layer.kind == "crop":
        return "crop " + ", ".join(f"{b}+{e}" for b, e in a["cropping"])
    if layer.kind == "pad":
        return "pad " + ", ".join(f"{b}+{e}" for b, e in a["padding"])
    if layer.kind in ("conv", "conv_transpose"):
        act = "" if a["activation"] == "linear" else f" {a['activation']}"
        stride = f"/{a['stride']}" if a["stride"] > 1 and layer.kind == "conv" else ""
        up = f"x{a['stride']}" if layer.kind == "conv_transpose" else ""
        return f"k{a['kernel']}{stride}{up} {a['padding'] if layer.kind == 'conv' else ''}{act}".replace("  ", " ")
    if layer.kind in ("maxpool", "avgpool"):
        return f"/{a['factor']}"
    if layer.kind == "upsample":
        return f"x{a['factor']} {a['interpolation']}"
    if layer.kind in ("norm", "activation"):
        return a.get("norm") or a.get("activation")
    if layer.kind == "dropout":
        return f"rate {a['rate']}"
    return ""


def summary_table(plan: Plan) -> Table:
    table = Table(title=f"[bold]{plan.name}[/]", box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column("layer", style="cyan", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("output", justify="right", no_wrap=True)
    table.add_column("params", justify="right", no_wrap=True)
    table.add_column("FLOPs", justify="right", no_wrap=True)
    table.add_column("note", style="dim", no_wrap=True)
    for group, layers in groupby(plan.layers, key=lambda layer: layer.group):
        layers = list(layers)
        table.add_row(f"[bold]{group_title(group)}[/]", "", "", "", "", "", end_section=False)
        for layer in layers:
            table.add_row("  " + layer.name, layer.kind, fmt_shape(layer.shape), f"{layer.params:,}",
                          fmt_count(layer.flops), _note(layer))
        table.add_section()
    table.add_row("[bold]total[/]", "", "", f"[bold]{plan.total_params:,}[/]", f"[bold]{fmt_count(plan.total_flops)}[/]", "")
    return table


def cost_lines(cost: Cost) -> list[str]:
    return [
        f"memory (batch {cost.batch}, {cost.dtype}): weights {fmt_bytes(cost.weight_bytes)}; "
        f"activations {fmt_bytes(cost.activation_bytes)}; inference peak {fmt_bytes(cost.inference_peak_bytes)}",
        f"training estimate {fmt_bytes(cost.training_bytes)} (weights + gradients + {cost.optimizer} state "
        f"+ every layer's output kept for backprop)",
        f"receptive field {cost.receptive_field} per spatial axis",
    ]


def print_fit(fit: dict, console: Console) -> None:
    budget = fmt_bytes(fit["budget_bytes"])
    if fit["max_batch"] is not None:
        console.print(f"fits {budget} ({fit['dtype']}, {fit['optimizer']}): training batch up to "
                      f"{fit['max_batch']} at {fmt_shape(fit['at_input_shape'])}")
    if fit["max_input_shape"] is None:
        console.print(f"at batch {fit['batch']} not even the smallest legal input fits {budget}")
    else:
        console.print(f"at batch {fit['batch']} the largest legal input that fits {budget} is "
                      f"{fmt_shape(fit['max_input_shape'])} ({fmt_bytes(fit['max_input_training_bytes'])})")


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
    return lines


def print_summary(plan: Plan, console: Console, cost: Cost | None = None) -> None:
    console.print(summary_table(plan))
    for line in footer_lines(plan) + (cost_lines(cost) if cost else []):
        console.print(line, highlight=False)


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
