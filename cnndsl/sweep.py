"""Architecture families: every combination of variable ranges and optional layers, checked."""
from __future__ import annotations

import csv
import io
import itertools
import math
import re
from dataclasses import dataclass, field

from . import ast, passes
from .api import gc_paused, parse_define, warn, warn_unused_variables
from .errors import CnnDslError, NoClassifierWarning, UsageError
from .expand import DEFAULT_MAX_LAYERS, Options, expand, unused_defines

DEFAULT_LIMIT = 10_000  # combinations; more needs --limit
_RANGE = re.compile(r"^(-?\d+)\.\.(-?\d+)(?:\.\.(\d+))?$")
_COUNT = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]?)$", re.I)
_SUFFIX = {"": 1, "k": 10 ** 3, "m": 10 ** 6, "g": 10 ** 9, "t": 10 ** 12}


@dataclass(frozen=True)
class Axis:
    """One swept variable and its values (ranges stay lazy until the size is checked)."""

    name: str
    parts: tuple  # range objects and single values, in the order written

    def __len__(self) -> int:
        return sum(len(p) if isinstance(p, range) else 1 for p in self.parts)

    def values(self) -> list:
        out: list = []
        for p in self.parts:
            out.extend(p if isinstance(p, range) else [p])
        return out


@dataclass(frozen=True)
class Site:
    """An `X?` in the spec: where it is and what it says."""

    line: int
    column: int
    text: str

    @property
    def label(self) -> str:
        return f"{self.text}@{self.line}:{self.column}"


@dataclass
class Row:
    variables: dict
    dropped: tuple[str, ...] = ()  # labels of the optional sites left out
    error: str | None = None  # the CnnDslError in one phrase
    location: str | None = None
    layers: int | None = None
    params: int | None = None
    macs: int | None = None
    output: object = None  # Shape: the main output's
    # several outputs (`outputs(...)`): (name, Shape) each, the main one first; else empty
    outputs: tuple = ()
    options: Options | None = field(default=None, repr=False)  # to check this row again
    # values a final SOFTMAX spreads over with no classifier in front of it (classes unset)
    unclassified: int | None = field(default=None, repr=False)

    @property
    def valid(self) -> bool:
        return self.error is None


def parse_axis(text: str) -> Axis:
    """`N=1..5`, `N=1..9..2`, `N=1,2,4`, `N=3`, `rounding=floor,ceil` -> an Axis."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not raw.strip():
        raise UsageError(f"-D expects NAME=VALUES, e.g. -D N=1..5 or -D N=1,2,4 (got {text!r})")
    parts = []
    for piece in raw.split(","):
        piece = piece.strip()
        m = _RANGE.match(piece)
        if m:
            start, stop, step = int(m[1]), int(m[2]), int(m[3] or 1)
            if step <= 0 or start > stop:
                raise UsageError(f"-D {name}: the range {piece} is empty (write low..high"
                                 f"[..step] with low <= high and step >= 1)")
            parts.append(range(start, stop + 1, step))
        else:
            parts.append(parse_define(f"{name}={piece}")[1])
    return Axis(parse_define(f"{name}=0")[0], tuple(parts))


def parse_count(text: str) -> int:
    """`5M` -> 5,000,000; `250k`, `1.5G`, `1200` (decimal suffixes K M G T)."""
    m = _COUNT.match(str(text).strip().replace(",", "").replace("_", ""))
    if not m:
        raise UsageError(f"not a count: {text!r} (write e.g. 5M, 250K, 1.5G or 1200000)")
    return int(float(m[1]) * _SUFFIX[m[2].lower()])


def optional_sites(program: ast.Program) -> list[Site]:
    """Every `X?` written in the spec, in source order (reached or not)."""
    sites: dict[tuple[int, int], Site] = {}
    text = program.source.text.split("\n")
    for node in ast.walk(program.statements):
        if isinstance(node, ast.Optional):
            span = node.span
            line = text[span.line - 1]
            shown = line[span.column - 1:span.end_column - 1] if span.end_line == span.line \
                else line[span.column - 1:] + "...?"
            sites.setdefault((span.line, span.column), Site(span.line, span.column, shown))
    return [sites[k] for k in sorted(sites)]


def unused_names(program: ast.Program, names) -> list[str]:
    """The swept names the spec never mentions (a typo, or a variable of another spec)."""
    return unused_defines(program, names)


def short_error(exc: CnnDslError) -> str:
    """A diagnostic in one phrase: `POOL #6 on 1x1x512: the 2x2 window is larger than its
    padded input` (the message without its formula, and the volume the layer got)."""
    head, *rest = exc.message.split(": ")
    phrase = ": ".join([head, *rest[:1]])
    got = next((n[len(_GOT):] for n in exc.notes if n.startswith(_GOT)), None)
    if got and re.fullmatch(r"\S+ #\d+", head) and rest:
        return f"{head} on {got}: {rest[0]}"
    return phrase


_GOT = "the input to this layer is "


def combinations(axes: list[Axis], sites: list[Site], optional: str, limit: int):
    """The (values, dropped sites) to check, after refusing sweeps larger than `limit`.

    `optional`: "keep" every X?, "drop" every X?, or "both": each site kept and dropped.
    """
    # Counted before the masks are built: 40 optional layers make 2^40 of them (issue 17,
    # F19), which the limit exists to refuse.
    n_drops = 2 ** len(sites) if optional == "both" else 1
    total = math.prod(len(a) for a in axes) * n_drops
    if total > limit:
        raise UsageError(f"the sweep has {total:,} combinations; the limit is {limit:,} "
                         f"(narrow the ranges or raise it with --limit {total})")
    drops = [()] if optional == "keep" else [tuple(sites)]
    if optional == "both":
        drops = [tuple(s for s, drop in zip(sites, mask) if drop)
                 for mask in itertools.product((False, True), repeat=len(sites))]
    names = [a.name for a in axes]
    for values in itertools.product(*(a.values() for a in axes)):
        for dropped in drops:
            yield dict(zip(names, values)), dropped


def run_sweep(program: ast.Program, axes: list[Axis], *, input=None, classes=None,
              max_layers: int | None = None, optional: str = "keep",
              limit: int = DEFAULT_LIMIT) -> list[Row]:
    """Expand and check the parsed spec once per combination: one Row each.

    With optional="both", each `X?` is kept and dropped; a combination dropping a site its
    network never reaches (say, inside a block repeated 0 times) repeats another: skipped.
    """
    warn_unused_variables(program, unused_names(program, [a.name for a in axes]))
    sites = optional_sites(program)
    with gc_paused():  # as check_program does for one network
        rows = _check_each(program, combinations(axes, sites, optional, limit), input=input,
                           classes=classes, max_layers=max_layers, optional=optional)
    warn_no_classifier(rows)
    return rows


def warn_no_classifier(rows: list[Row]) -> None:
    """Once per sweep: networks that end in a softmax over whatever reaches it, because
    `classes` is unset (the lecture's pattern swept without --classes, issue 18)."""
    first = next((r for r in rows if r.unclassified), None)
    if first is None:
        return
    count = sum(1 for r in rows if r.unclassified)
    where = " ".join(f"{k}={_value_text(v)}" for k, v in first.variables.items())
    warn(NoClassifierWarning(
        f"{count:,} of the networks end in SOFTMAX with no classifier in front of it "
        f"(`classes` is not set), so the softmax spreads over whatever reaches it: "
        f"{first.unclassified:,} values{f' where {where}' if where else ''}; "
        "pass --classes N (or write `classes = N` in the spec) to end them in FC(N) - SOFTMAX"))


# Layers that pass on or pick among the values before them: a classifier's output may go
# through them (SqueezeNet's CONV(classes, 1) - GAP - SOFTMAX) and stay the classifier's.
_PASSING = ("pool", "reshape", "regularize")


def softmax_without_classifier(graph) -> int | None:
    """The values the network's final SOFTMAX spreads over when `classes` is unset and no
    classifier makes them: it reads a whole volume (H x W > 1), or, back through pools,
    flattens and dropouts, a layer without weights (a RELU, a merge); else None."""
    out = graph[graph.output]
    if graph.context.classes is not None or not out.kind.logits_drop:
        return None
    inputs = graph.inputs(out)
    if len(inputs) != 1:
        return None
    shape = inputs[0].shape
    if (shape.h or 1) * (shape.w or 1) > 1:
        return out.shape.numel
    feed = inputs[0]
    while feed.kind.family in _PASSING and len(graph.inputs(feed)) == 1:
        feed = graph.inputs(feed)[0]
    return None if feed.n_params else out.shape.numel


def _check_each(program, combos, *, input, classes, max_layers, optional) -> list[Row]:
    rows = []
    for variables, dropped in combos:
        options = Options(defines=dict(variables), input=input, classes=classes,
                          max_layers=max_layers or DEFAULT_MAX_LAYERS,
                          drop_optional=frozenset((s.line, s.column) for s in dropped))
        row = Row(variables, tuple(s.label for s in dropped), options=options)
        graph = None
        try:
            graph = expand(program, options)
            passes.check(graph)
        except CnnDslError as exc:
            row.error, row.location = short_error(exc), exc.location
        reached = graph.optional_sites if graph is not None else None
        if optional == "both" and reached is not None and not options.drop_optional <= set(
                reached):
            continue  # the same network as the combination keeping that site
        if row.valid:
            t = graph.totals
            row.layers, row.params, row.macs, row.output = (t["layers"], t["params"], t["macs"],
                                                            t["output"])
            row.outputs = tuple((name, graph[v].shape) for name, v in graph.outputs)
            row.unclassified = softmax_without_classifier(graph)
        rows.append(row)
    return rows


def select(rows: list[Row], *, max_params=None, max_macs=None, valid_only=False,
           sort: str | None = None, top: int | None = None) -> list[Row]:
    """Filter (budgets apply to valid rows), sort (valid rows by the key, then the invalid)."""
    out = [r for r in rows if not (valid_only and not r.valid)
           and not (r.valid and max_params is not None and r.params > max_params)
           and not (r.valid and max_macs is not None and r.macs > max_macs)]
    if sort:
        out.sort(key=lambda r: (not r.valid, getattr(r, sort) if r.valid else 0))
    return out[:top] if top is not None else out


# -- output ----------------------------------------------------------------------------------

def _value_text(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def output_text(r: Row) -> str:
    """The output column: the shape, or each output by name (`logits 10, aux 17x17x2`)."""
    if not r.valid:
        return ""
    return ", ".join(f"{name} {shape}" for name, shape in r.outputs) if r.outputs else \
        str(r.output)


def to_records(rows: list[Row]) -> list[dict]:
    """Rows as plain data (the JSON schema in docs/sweep.md); `outputs` as in `cnndsl summary
    --format json`: each named output, or empty where the network has one."""
    return [{"variables": r.variables, "dropped": list(r.dropped), "valid": r.valid,
             "error": r.error, "location": r.location, "layers": r.layers, "params": r.params,
             "macs": r.macs, "output": r.output.as_list() if r.valid else None,
             "outputs": [{"name": name, "output": shape.as_list()} for name, shape in r.outputs]}
            for r in rows]


def format_csv(rows: list[Row], names: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*names, "dropped", "valid", "layers", "params", "macs", "output", "error",
                     "location"])
    for r in rows:
        writer.writerow([*(_value_text(r.variables[n]) for n in names), " ".join(r.dropped),
                         "yes" if r.valid else "no", r.layers, r.params, r.macs,
                         output_text(r), r.error or "", r.location or ""])
    return buf.getvalue()


def short_label(label: str, width: int = 24) -> str:
    """A site label for the table: `(CONV(384, 3, pad=1) - RELU)?@12:5` becomes
    `(CONV(384, 3, pad=1) -…?@12:5` (JSON and CSV keep the whole text)."""
    text, at, where = label.rpartition("@")
    if len(text) <= width:
        return label
    return f"{text[:width - 2].rstrip()}…?{at}{where}"


def _networks(n: int) -> str:
    return f"{n:,} network{'' if n == 1 else 's'}"


def _tally(rows: list[Row]) -> str:
    valid = sum(r.valid for r in rows)
    return f"{valid:,} valid, {len(rows) - valid:,} with errors"


def closing_line(shown: list[Row], checked: list[Row] | None = None) -> str:
    """`90 networks: 75 valid, 15 with errors`; where --top or a filter hides rows, what the
    table shows and what the sweep checked (issue 18: `--top 3` said `3 networks` of 480)."""
    if checked is None or len(checked) == len(shown):
        return f"{_networks(len(shown))}: {_tally(shown)}"
    return (f"{len(shown):,} of {_networks(len(checked))} shown: {_tally(shown)} "
            f"(all {len(checked):,}: {_tally(checked)})")


def format_table(rows: list[Row], names: list[str], show_dropped: bool,
                 checked: list[Row] | None = None) -> str:
    """The table of `rows`; its last line counts them, and `checked` (every row the sweep
    made) where the table shows fewer."""
    head = ["#", *names, *(["dropped"] if show_dropped else []), "layers", "params", "MACs",
            "output", "result"]
    numeric = {"#", "layers", "params", "MACs", *names}
    cells = [head]
    for i, r in enumerate(rows, 1):
        cells.append([str(i), *(_value_text(r.variables[n]) for n in names),
                      *([" ".join(map(short_label, r.dropped)) or "-"] if show_dropped
                        else []),
                      *((f"{r.layers:,}", f"{r.params:,}", f"{r.macs:,}", output_text(r), "ok")
                        if r.valid else ("", "", "", "", r.error))])
    widths = [max(len(line[i]) for line in cells) for i in range(len(head))]
    lines = ["  ".join(c.rjust(w) if head[i] in numeric else c.ljust(w)
                       for i, (c, w) in enumerate(zip(line, widths))).rstrip() for line in cells]
    lines.append(closing_line(rows, checked))
    return "\n".join(lines) + "\n"
