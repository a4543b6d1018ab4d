"""`cnndsl render`: draw a spec (Graphviz diagram, volume figure, or the page to explore)."""
from __future__ import annotations

from ._common import add_spec_args, graph_from_args

FORMATS = ("svg", "png", "pdf", "dot", "html")


def register(sub) -> None:
    p = sub.add_parser(
        "render", help="draw the network: a Graphviz diagram, the lecture's volume figure, or "
                       "a page to explore (repeats folded into `x N`)",
        description="Draw a spec: one node per layer with its key parameters, edges labelled "
                    "with the volume that flows, a colour per layer family. Repeats are "
                    "folded into one copy in an `x N` box unless --expand. The format comes "
                    "from the file name (.svg .png .pdf .dot .html); .dot needs no Graphviz "
                    "program. --style volumes draws each layer's output as a box in "
                    "perspective (SVG, PNG, PDF); .html writes one self-contained page where "
                    "blocks and repeats unfold on click. --expand, --depth and --rankdir "
                    "mean the same in each; one that cannot apply (--rankdir TB for volumes, "
                    "any --rankdir for .html) is refused.")
    add_spec_args(p)
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="where to write the drawing (.svg, .png, .pdf, .dot or .html)")
    p.add_argument("--expand", action="store_true",
                   help="draw every copy of every repeat (repeats stay boxed); in .html, start "
                        "with every box unfolded")
    p.add_argument("--depth", type=int, metavar="N",
                   help="draw each block called N levels deep (counting def calls: 1 = those "
                        "called at the top level) as one box with its output volume, "
                        "parameters and MACs; in .html, start unfolded down to that level")
    p.add_argument("--rankdir", choices=("TB", "LR", "BT", "RL"),
                   help="the flow: top to bottom (graph's default), left to right (volumes' "
                        "default), bottom to top, right to left; volumes takes LR or RL, "
                        ".html none")
    p.add_argument("--style", choices=("graph", "volumes"), default="graph",
                   help="graph: one node per layer (default); volumes: the lecture's figure, "
                        "each output volume a box sized by H, W and C")
    p.add_argument("--format", choices=FORMATS, help="override the format the file name implies")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from ..drawing import check_options, format_for
    from ..outputs import resolve
    from ..render import render_file

    # a bad file name or option fails before any work
    check_options(format_for(Path(args.output), args.format), args.style, args.rankdir,
                  args.depth)
    resolve(args.output, inputs=(args.spec,))  # so do a directory, a FIFO, the spec itself
    path = render_file(drawable_graph(args), args.output, args.format, expand=args.expand,
                       rankdir=args.rankdir, style=args.style, depth=args.depth)
    print(f"wrote {path}")
    return 0


def drawable_graph(args):
    """The checked graph to draw. With --expand every layer is drawn, so the build itself
    stops past the drawing's cap: a 100,000-layer chain was built and checked (2 s, 160 MB)
    only to be refused (issue 17, F25). A tighter --max-layers of the user's keeps its error."""
    import argparse

    from ..errors import CnnLayerLimitError, UsageError
    from ..render import MAX_DRAWN

    if not args.expand or (args.max_layers is not None and args.max_layers <= MAX_DRAWN):
        return graph_from_args(args)
    try:
        return graph_from_args(argparse.Namespace(**{**vars(args), "max_layers": MAX_DRAWN}))
    except CnnLayerLimitError:
        raise UsageError(f"the diagram would draw more than {MAX_DRAWN:,} layers; the limit "
                         f"is {MAX_DRAWN:,} (without --expand, repeats are drawn once)") from None
