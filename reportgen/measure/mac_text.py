"""A MAC audit in words: the convention, the cross-checks' one-line verdicts (✓ only for what a check saw and
confirmed), the total, and the per-layer table for the console or Markdown; worded by `translate` (str: in
English; reportgen.report.i18n.wording(lang) for another language).

Convention, stated once (CONVENTION) and wherever a number appears: 1 MAC = 1 multiply + 1 add = 2 FLOPs, per
image, forward pass in eval mode; bias additions are not MACs; BatchNorm at inference is one multiply-add per
element (x·scale + shift, FrozenBatchNorm2d too); attention counts q·kᵀ and weights·v; an RNN counts its
weight matrices at every time step; elementwise work (activations, gates, softmax, norms' statistics) is not
MACs. `--expect-macs` accepts the total, or the total without BatchNorm (as torchvision publishes, noted).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from reportgen.measure.mac_checks import CrossCheck
from reportgen.measure.numbers import Words, pad, text_width, thousands
from reportgen.measure.unchecked import explained_text, unchecked_text
from reportgen.messages import Message

if TYPE_CHECKING:  # macs.py imports this module to record an audit's verdicts with it
    from reportgen.measure.macs import MacAudit

CONVENTION = (
    "1 MAC = 1 multiply + 1 add = 2 FLOPs, per image; bias additions are not MACs; "
    "BatchNorm at inference is one multiply-add per element"
)


def not_checked_text(check: CrossCheck, translate: Words = str) -> str:
    """Why part of our count went unchecked, layers of one type and reason together ("20 BatchNorm2d layers
    (2,483,712 MACs): …"); "" when the check saw everything. vars(), not asdict(): each reason stays a message,
    worded by `translate` (str: in English)."""
    if check.figure < 0:
        return translate(check.error)
    return unchecked_text((vars(entry) for entry in check.not_checked), _sentences(translate), translate)


def _sentences(translate: Words) -> Callable[..., str]:
    """`translate` as unchecked.py's `tr(key, **values)`."""
    return lambda key, **values: translate(Message(key, values))


def _check_text(check: CrossCheck, unit: str, factor: int, total: int, translate: Words = str) -> str:
    """One line: ✓ only for what the check saw and confirmed; ✗ with the places it disagrees; "not checked" and
    why for the rest."""
    say = _sentences(translate)
    if check.figure < 0:
        return say("not checked ({why})", why=translate(check.error))
    figure = f"{thousands(check.figure)}{unit}"
    explained = ""
    if check.explained:
        why = explained_text((vars(e) for e in check.explained), say, translate)
        explained = say("; differs, explained: {why}", why=why)
    if check.disagree:
        verdict = say("{figure} ✗ MISMATCH ({where})", figure=figure, where="; ".join(check.disagree))
    elif check.checked_macs:
        key = "{figure} ✓ for the {checked} MACs it can see (it counts {factor} × ours)" if factor > 1 else (
            "{figure} ✓ for the {checked} MACs it can see (it counts ours)")  # fmt: skip
        verdict = say(key, figure=figure, checked=thousands(check.checked_macs), factor=factor)
    elif check.explained:
        verdict = f"{figure} ≠ " + say("ours")
    elif total:
        return say("{figure}, not checked: {why}", figure=figure, why=not_checked_text(check, translate))
    else:
        verdict = say("{figure} (no multiply-adds to check)", figure=figure)
    unchecked = say("; not checked: {why}", why=not_checked_text(check, translate)) if check.unchecked_macs else ""
    return verdict + explained + unchecked


def cross_check_text(audit: MacAudit, translate: Words = str) -> tuple[str, str]:
    """The two cross-checks as one-line verdicts (FlopCounterMode, torchinfo), worded by `translate`."""
    flop = _check_text(audit.flop_counter, " FLOPs", 2, audit.total, translate)
    info = _check_text(audit.torchinfo, "", 1, audit.total, translate)
    if audit.torchinfo.checked_macs and not audit.torchinfo.disagree:
        ours = _sentences(translate)("(it counts ours)")
        info = info.replace(ours, _sentences(translate)("(it counts ours + their bias additions)"))
    return flop, info


def total_text(audit: MacAudit, translate: Words = str) -> str:
    """ "61,470 (= 122,940 FLOPs)"; "at least 12,544 (…): 1 op with multiply-adds not counted" when some ran
    without a formula here (the total is then a lower bound, never a complete figure)."""
    text = f"{thousands(audit.total)} (= {thousands(2 * audit.total)} FLOPs)"
    missing = len(audit.not_counted)
    if not missing:
        return text
    key = "at least {text}: {n} ops not counted (below)" if missing > 1 else "at least {text}: 1 op not counted (below)"
    return _sentences(translate)(key, text=text, n=missing)


def input_dependence_text(audit: MacAudit, translate: Words = str) -> str:
    """Both figures and where they differ, when the op counts depend on the input's values."""
    first, second = audit.input_dependent
    return _sentences(translate)(
        "{first} MACs for one random input, {second} for another (its negation): the forward's work depends "
        "on its input's values, and the total above is the first ({layers})",
        first=thousands(first),
        second=thousands(second),
        layers="; ".join(audit.input_dependent_layers),
    )


def format_macs(audit: MacAudit, label: str = "", fmt: str = "table", translate: Words = str) -> str:
    """Layer, type, formula, MACs; then totals, findings and both cross-checks, as a console `table` or
    `markdown`, worded by `translate` (str: in English; reportgen.report.i18n.wording(lang) for another)."""
    say = _sentences(translate)
    rows = [
        (
            (layer.name or "(root)") + (say(" (forward)") if layer.forward else ""),
            layer.type,
            layer.formula or f"– ({translate(layer.note)})",
            thousands(layer.macs) if layer.macs else "",
        )
        for layer in audit.layers
    ]
    flop, info = cross_check_text(audit, translate)
    summary = [say("total MACs per image: {total}", total=total_text(audit, translate))]
    if audit.batchnorm_macs:
        summary[0] += say("; without BatchNorm {macs}", macs=thousands(audit.total - audit.batchnorm_macs))
    summary += [say("finding: {name} ({type}): {note}", name=layer.name or "(root)", type=layer.type,
                    note=translate(layer.note)) for layer in audit.findings]  # fmt: skip
    summary += [say("not in the total: {entry}", entry=translate(entry)) for entry in audit.not_counted]
    if audit.input_dependent:
        summary.append(say("input-dependent: {text}", text=input_dependence_text(audit, translate)))
    summary += [f"{say('FlopCounterMode')}: {flop}", say("torchinfo mult-adds: {check}", check=info)]
    title = say("MACs of {label} ({convention})" if label else "MACs ({convention})", label=label,
                convention=say(CONVENTION))  # fmt: skip
    if fmt == "markdown":
        return _macs_markdown(title, rows, summary, translate)
    header = tuple(say(word) for word in _MAC_COLUMNS)
    widths = [max(text_width(r[i]) for r in [header, *rows]) for i in range(4)]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(pad(c, w, i == 3) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([title, line(header), *map(line, rows), *summary])


_MAC_COLUMNS = ("layer", "type", "MACs formula", "MACs")


def _macs_markdown(title: str, rows: list[tuple[str, ...]], summary: list[str], translate: Words = str) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    header = " | ".join(translate(Message(word)) for word in _MAC_COLUMNS)
    lines = [f"**{cell(title)}**", "", f"| {header} |", "|---|---|---|---:|"]
    lines += [f"| `{name}` | {kind} | {cell(formula)} | {count} |" for name, kind, formula, count in rows]
    lines += ["", *(f"- {cell(text)}" for text in summary)]
    return "\n".join(lines) + "\n"
