"""The report model's cost cells: training speed, latency, throughput and size beside accuracy — in a table of
their own, or joined to the comparison when every model trained once (merged_costs)."""

from __future__ import annotations

from typing import Any

from reportgen.report.analysed import Analysis
from reportgen.report.model import Cell, Row, Table, count, decimal, is_number, label, percent
from reportgen.report.tables_setup import mac_caveats

COST_COLUMNS = [
    "Training images per second",
    "Total training time",
    "Latency, batch 1",
    "Throughput, batch 256",
    "Size (fp32 state_dict)",
]


def merged_costs(ctx: Analysis) -> dict[str, dict[str, Any]]:
    """The cost rows by model when they join the comparison: every model trained once (its one row is its
    best trial, whose accuracy the cost table would repeat) and every model measured. Otherwise (sweeps,
    seeds, a failed trial, no costs) {}, and the cost table stands on its own."""
    costs = ctx.costs
    models = [r["model"] for r in ctx.comparison]
    if not costs or len(set(models)) != len(models):
        return {}
    by_model = {r["model"]: r for r in costs["rows"]}
    return by_model if set(by_model) == set(models) else {}


def macs_of(ctx: Analysis, model: str) -> dict[str, Any]:
    audit = next(m["audit"] for m in ctx.models if m["label"] == model)
    return (audit.cost or {}).get("macs") or {}


def macs_cell(total: int, macs: dict[str, Any], tr) -> Cell:
    """MACs per image in the cost table: "≥ N" when ops ran without a formula, noted when input-dependent."""
    caveats = mac_caveats(macs, tr)
    return Cell(("≥ " if macs.get("not_counted") else "") + count(total), note=" ".join(caveats))


def cost_cells(r: dict[str, Any], tr) -> list[Cell]:
    """The cells of COST_COLUMNS for one model's cost row."""
    return [
        Cell(count(r["train_images_per_second"])),
        Cell(_unit(decimal(r["total_train_seconds"], 1), "s")),
        _latency(r, tr),
        Cell(_unit(count(r["throughput_b256"]), "/s")),
        Cell(_unit(decimal(r["state_dict_bytes"] / 1024, 1), "KiB")),
    ]


def cost_table(ctx: Analysis, tr) -> Table | None:
    """Each model's cost beside its best trial's accuracy, where the comparison could not take it in."""
    costs = ctx.costs
    if not costs or merged_costs(ctx):
        return None
    columns = ["Model", "Parameters", "MACs per image", "Final test accuracy", "Seconds per epoch", *COST_COLUMNS]
    rows = [
        Row(
            [
                label(r["model"]),
                Cell(count(r["parameters"])),
                macs_cell(r["macs"], macs_of(ctx, r["model"]), tr),
                Cell(percent(r["final_test_acc"])),
                Cell(decimal(r["seconds_per_epoch"], 2)),
                *cost_cells(r, tr),
            ]
        )
        for r in costs["rows"]
    ]
    return Table("cost", tr("Cost beside accuracy"), [tr(c) for c in columns], rows, caption=cost_caption(costs, tr))


def cost_caption(costs: dict[str, Any], tr) -> str:
    """How the cost columns were measured, and which latencies are within noise of each other."""
    return " ".join(
        part
        for part in [
            tr(
                "Latency: median and interquartile range over repetitions after a warm-up, in inference mode "
                "(no gradients), measured once per model before training on"
            ),
            f"{costs['device']} ({tr('threads')}: {costs['threads']}).",
            tr("Seconds per epoch (median) include the test evaluation."),
            _latency_noise(costs["rows"], tr),
            tr("Multiply-adds as counted in the model tables above."),
        ]
        if part
    )


def _latency_noise(rows: list[dict[str, Any]], tr) -> str:
    """Pairs of models whose batch-1 latencies differ by less than their spread (half their interquartile
    ranges together): such a difference is measurement noise, and the caption says so."""
    timed = [r for r in rows if is_number(r["latency_b1_ms"]) and is_number(r["latency_b1_iqr_ms"])]
    pairs = [
        f"{a['model']} / {b['model']}"
        for i, a in enumerate(timed)
        for b in timed[i + 1 :]
        if abs(a["latency_b1_ms"] - b["latency_b1_ms"]) < (a["latency_b1_iqr_ms"] + b["latency_b1_iqr_ms"]) / 2
    ]
    if not pairs:
        return ""
    return tr("Latencies within the measurement's spread, not different: {pairs}.", pairs="; ".join(pairs))


def _unit(text: str, unit: str) -> str:
    return text if text == "–" else f"{text} {unit}"


def _latency(row: dict[str, Any], tr) -> Cell:
    """The median, its interquartile range as the cell's second line, named as such (a ± would read as an error
    bar); each line short enough to stay whole in a narrow column."""
    if not is_number(row["latency_b1_ms"]):
        return Cell("–")
    return Cell(f"{decimal(row['latency_b1_ms'], 3)} ms", note=f"{tr('IQR')} {decimal(row['latency_b1_iqr_ms'], 3)}")
