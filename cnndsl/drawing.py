"""What every picture of `cnndsl render` shares: the options each one takes (and the help line
that refuses one it cannot follow), and --depth's levels of blocks with their totals."""
from __future__ import annotations

from pathlib import Path

from .errors import UsageError
from .ir import ScopeItems, as_graph

FORMATS = ("svg", "png", "pdf", "dot", "html")
STYLES = ("graph", "volumes")
RANKDIRS = ("TB", "LR", "BT", "RL")
VOLUME_RANKDIRS = ("LR", "RL")  # the volume figure is one row
EXTENSIONS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot",
              ".html": "html", ".htm": "html"}


def block_depth(scope) -> int:
    """How many `def` calls enclose a scope, itself included: what --depth counts (repeats
    and branches are no level of their own)."""
    return sum(s.kind == "block" for s in scope.path)


def check_depth(depth: int | None) -> None:
    if depth is not None and depth < 1:
        raise UsageError(f"--depth must be at least 1, not {depth}\n  help: --depth 1 draws "
                         "each block called at the top level as one box; leave it out to "
                         "open every block")


def block_totals(holder: ScopeItems) -> tuple[str, tuple[str, str]]:
    """The title of a folded block (`stage(c=64, n=3, s=1)`) and its totals in two lines (a
    narrower box): output volume and parameters, then MACs and layers."""
    from .summary import count_of, human

    layers = holder.nodes()
    params = sum(n.n_params for n in layers)
    macs = sum(n.macs for n in layers)
    macs_text = human(macs)  # `1.03 G`, or a bare number under a thousand
    macs_text += "MACs" if not macs_text[-1].isdigit() else " MACs"
    totals = (f"{layers[-1].shape} · {params:,} params",
              f"{macs_text} · {count_of(len(layers), 'layer')}")
    return call_text(holder.scope), totals


def call_text(scope) -> str:
    """A block call as the drawings name it: `stage(c=64, n=3, s=1)`, `stem`."""
    args = ", ".join(f"{k}={v}" for k, v in scope.args.items())
    return f"{scope.name}({args})" if args else scope.name


def check_options(fmt: str, style: str, rankdir: str | None, depth: int | None) -> None:
    """Refuse, with a help line, an option the drawing asked for cannot follow."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if style not in STYLES:
        raise UsageError(f"unknown style {style!r}; choose one of {', '.join(STYLES)}")
    if rankdir is not None and rankdir not in RANKDIRS:
        raise UsageError(f"unknown rankdir {rankdir!r}; choose one of {', '.join(RANKDIRS)}")
    check_depth(depth)
    if fmt == "html":
        if style != "graph":
            raise UsageError(f"--style {style} does not apply to an .html page\n  help: the page "
                             "to explore is its own drawing; write .svg, .png or .pdf for the "
                             f"{style} figure")
        if rankdir is not None:
            raise UsageError(f"--rankdir {rankdir} does not apply to an .html page\n  help: the "
                             "page lays its boxes out top to bottom; --expand and --depth set "
                             "what it shows unfolded")
    elif style == "volumes":
        if fmt == "dot":
            raise UsageError("--style volumes does not apply to a .dot file\n  help: the volume "
                             "figure is drawn without graphviz: write .svg, .png or .pdf (or "
                             "--style graph for a .dot file)")
        if rankdir not in (None, *VOLUME_RANKDIRS):
            raise UsageError(f"--rankdir {rankdir} does not apply to --style volumes\n  help: "
                             "the volume figure reads along one row, left to right (LR, its "
                             "default) or right to left (RL); TB and BT are for --style graph")


def diagram_title(graph) -> str:
    graph = as_graph(graph)
    t = graph.totals
    name = Path(graph.source.name).name
    from .summary import count_of, human

    return (f"{name}: {count_of(t['params'], 'parameter')}, {human(t['macs'])}MACs, "
            f"{count_of(t['layers'], 'layer')}")


def format_for(path: Path, fmt: str | None) -> str:
    if fmt:
        return fmt
    try:
        return EXTENSIONS[path.suffix.lower()]
    except KeyError:
        raise UsageError(f"cannot tell the format from {path.name!r}: name the file .svg, .png, "
                         ".pdf, .dot or .html, or pass --format") from None
