"""A small SVG writer (polygons, lines, text, tooltips, escaped) and its PNG/PDF conversion.

The volume figure needs a handful of shapes in a self-contained file; writing them here keeps
the drawing free of a dependency (drawsvg and svgwrite would add little over these lines).
PNG and PDF are made by CairoSVG, a well-kept pure-Python package over the cairo library that
graphviz already brings; it is imported only when a PNG or PDF is asked for.
"""
from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from .errors import UsageError

FONT = "Helvetica, Arial, 'Liberation Sans', 'DejaVu Sans', sans-serif"
# Average advance of a character as a share of the font size (Helvetica's digits are 0.56,
# capitals up to 0.72): used to keep labels apart and to size the picture.
CHAR_WIDTH = {False: 0.60, True: 0.66}


def text_width(text: str, size: float, bold: bool = False) -> float:
    return len(text) * size * CHAR_WIDTH[bold]


def _num(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _attrs(**attrs) -> str:
    return "".join(f" {k.rstrip('_').replace('_', '-')}={quoteattr(str(v))}"
                   for k, v in attrs.items() if v is not None)


class Svg:
    """Shapes in drawing order; the picture's box grows to hold what is drawn."""

    def __init__(self, mirror: bool = False):
        # mirror: every x is negated (the drawing flows right to left) but text stays upright
        self.sx = -1.0 if mirror else 1.0
        self.parts: list[str] = []
        self.box = [float("inf"), float("inf"), float("-inf"), float("-inf")]

    def _grow(self, x0: float, y0: float, x1: float, y1: float) -> None:
        b = self.box
        b[0], b[1], b[2], b[3] = min(b[0], x0), min(b[1], y0), max(b[2], x1), max(b[3], y1)

    def _add(self, tag: str, title: str | None, **attrs) -> None:
        if title:
            self.parts.append(f"<{tag}{_attrs(**attrs)}><title>{escape(title)}</title></{tag}>")
        else:
            self.parts.append(f"<{tag}{_attrs(**attrs)}/>")

    def polygon(self, points, fill: str, stroke: str = "#2c3e50", width: float = 0.8,
                title: str | None = None, dash: str | None = None) -> None:
        points = [(self.sx * x, y) for x, y in points]
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        self._grow(min(xs), min(ys), max(xs), max(ys))
        self._add("polygon", title, points=" ".join(f"{_num(x)},{_num(y)}" for x, y in points),
                  fill=fill, stroke=stroke, stroke_width=_num(width), stroke_linejoin="round",
                  stroke_dasharray=dash)

    def line(self, x1: float, y1: float, x2: float, y2: float, stroke: str = "#2c3e50",
             width: float = 0.8, dash: str | None = None, marker: str | None = None) -> None:
        x1, x2 = self.sx * x1, self.sx * x2
        self._grow(min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))
        self._add("line", None, x1=_num(x1), y1=_num(y1), x2=_num(x2), y2=_num(y2),
                  stroke=stroke, stroke_width=_num(width), stroke_dasharray=dash,
                  marker_end=f"url(#{marker})" if marker else None)

    def circle(self, x: float, y: float, r: float, fill: str) -> None:
        x = self.sx * x
        self._grow(x - r, y - r, x + r, y + r)
        self._add("circle", None, cx=_num(x), cy=_num(y), r=_num(r), fill=fill)

    def polyline(self, points, stroke: str = "#2c3e50", width: float = 1.0) -> None:
        points = [(self.sx * x, y) for x, y in points]
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        self._grow(min(xs), min(ys), max(xs), max(ys))
        self._add("polyline", None, points=" ".join(f"{_num(x)},{_num(y)}" for x, y in points),
                  fill="none", stroke=stroke, stroke_width=_num(width))

    def text(self, x: float, y: float, text: str, size: float = 11, anchor: str = "middle",
             bold: bool = False, fill: str = "#1c2833", title: str | None = None) -> None:
        x = self.sx * x
        if self.sx < 0:
            anchor = {"start": "end", "end": "start"}.get(anchor, anchor)
        w = text_width(text, size, bold)
        left = {"start": x, "middle": x - w / 2, "end": x - w}[anchor]
        self._grow(left, y - size, left + w, y + size * 0.3)
        body = escape(text) + (f"<title>{escape(title)}</title>" if title else "")
        self.parts.append(f"<text{_attrs(x=_num(x), y=_num(y), font_size=_num(size))}"
                          f"{_attrs(text_anchor=anchor if anchor != 'start' else None)}"
                          f"{' font-weight=' + quoteattr('bold') if bold else ''}"
                          f"{_attrs(fill=fill if fill != '#1c2833' else None)}>{body}</text>")

    def document(self, margin: float = 12, background: str = "#ffffff") -> str:
        x0, y0, x1, y1 = self.box if self.parts else (0, 0, 0, 0)
        x0, y0, w, h = x0 - margin, y0 - margin, x1 - x0 + 2 * margin, y1 - y0 + 2 * margin
        head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{_num(w)}" height="{_num(h)}" '
                f'viewBox="{_num(x0)} {_num(y0)} {_num(w)} {_num(h)}" '
                f'font-family={quoteattr(FONT)} font-size="11" fill="#1c2833">')
        defs = ('<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" '
                'markerWidth="6" markerHeight="6" orient="auto-start-reverse">'
                '<path d="M0,0 L10,5 L0,10 z" fill="#2c3e50"/></marker></defs>')
        backdrop = (f'<rect x="{_num(x0)}" y="{_num(y0)}" width="{_num(w)}" height="{_num(h)}" '
                    f'fill="{background}"/>')
        return "\n".join([head, defs, backdrop, *self.parts, "</svg>"]) + "\n"


def convert(svg_text: str, fmt: str, scale: float = 2.0) -> bytes:
    """The SVG as `svg`, `png` (at `scale` pixels per SVG unit) or `pdf` bytes."""
    if fmt == "svg":
        return svg_text.encode("utf-8")
    try:
        import cairosvg
    except (ImportError, OSError) as exc:  # OSError: the cairo library itself is missing
        raise UsageError(f"writing {fmt.upper()} needs CairoSVG and the cairo library ({exc}): "
                         "pip install cairosvg, and apt-get install libcairo2; or write .svg"
                         ) from None
    data = svg_text.encode("utf-8")
    if fmt == "png":
        return cairosvg.svg2png(bytestring=data, scale=scale)
    if fmt == "pdf":
        return cairosvg.svg2pdf(bytestring=data)
    raise UsageError(f"the volume figure is written as svg, png or pdf, not {fmt}")
