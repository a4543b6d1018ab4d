"""What a layer kind is: its parameters, their types, and the hooks every kind may override."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..errors import CnnArgumentError, CnnShapeError, Span, did_you_mean
from ..shapes import ROUNDING_MODES, Shape

REQUIRED = object()


class Symbol(str):
    """A bare word used as a value (`same`, `floor`, `true`). The expander may note where it
    is written (`span`) and the scope it was read in (`scope`), for its errors; a copy or a
    pickle is the word alone."""

    def __reduce__(self):
        return Symbol, (str(self),)


@dataclass(frozen=True)
class Param:
    name: str
    type: str  # count | pair | pad | int | float | prob | bool | rounding
    default: Any = None  # None: decided by the kind (often from the input shape)
    aliases: tuple[str, ...] = ()
    doc: str = ""
    keyword_only: bool = False  # PyTorch's extras (in_channels, ceil_mode): never positional
    hint: str = ""  # the name `cnndsl import` gives a def parameter that passes it on
    block_rate: bool = False  # a rate that grows with the block (stochastic depth): the
    #                           importer writes it from index(block) / count(block) where it fits


@dataclass
class Context:
    """Spec-wide settings the shape-dependent defaults read."""

    input: Shape
    classes: int | None = None
    width: int = 64
    max_width: int = 512
    fc_width: int = 4096
    rounding: str = "strict"


@dataclass
class Site:
    """Where a node sits, for defaults and messages."""

    span: Span | None
    label: str
    is_head: bool = False  # nothing but softmax/dropout/flatten follows it


@dataclass
class Recipe:
    """How a node becomes torch, as data: read alike by the in-memory and source backends.

    Either a module (`module`, built with `kwargs`) or a tensor function over all the node's
    inputs (`function`: "add" sums them, "cat" joins them along `kwargs["dim"]`).
    """

    module: str | None = None  # a torch.nn class name, or a cnndsl.torch_modules one (custom)
    kwargs: dict = field(default_factory=dict)
    flatten: bool = False  # flatten a volume to (N, C*H*W) before the module
    function: str | None = None  # "add" | "cat": a tensor operation, not a module
    positional: tuple[str, ...] = ()  # kwargs the generated source writes positionally
    defaults: dict = field(default_factory=dict)  # torch's defaults: the source leaves them out
    custom: bool = False  # a class of cnndsl.torch_modules, copied into generated source
    # The module may return its input tensor itself (eval Dropout, Flatten views): an in-place
    # operation after it would overwrite that input too.
    aliases_input: bool = False
    # Its backward does not need its output, so a sum may accumulate into it in place (as
    # torchvision's `out += identity`).
    accumulable: bool = False


# How each family is drawn by `cnndsl render` (graphviz node attributes, one colour per
# family); a kind adds to its family's style with its `draw` attribute.
DRAW_STYLES: dict[str, dict[str, str]] = {
    "input": {"shape": "invhouse", "fillcolor": "#d5d8dc"},
    "conv": {"shape": "box", "fillcolor": "#aed6f1"},
    "pool": {"shape": "box", "fillcolor": "#f5b7b1"},
    "dense": {"shape": "box", "fillcolor": "#d2b4de"},
    "activation": {"shape": "box", "fillcolor": "#fdebd0"},
    "norm": {"shape": "box", "fillcolor": "#abebc6"},
    "regularize": {"shape": "box", "fillcolor": "#eaeded"},
    "reshape": {"shape": "box", "fillcolor": "#eaeded"},
    "merge": {"shape": "ellipse", "fillcolor": "#f9e79f"},
    "other": {"shape": "box", "fillcolor": "#ffffff"},
}
# The families the volume figure (`--style volumes`) draws as a box or bar of their own; the
# others (activations, normalisation, dropout, reshapes) keep the volume as it is, or only
# flatten it, and are left to the box before them.
VOLUME_FAMILIES = frozenset({"conv", "pool", "dense"})


REGISTERED: list[LayerKind] = []


def register(cls: type[LayerKind]) -> type[LayerKind]:
    """Class decorator: the kind joins the registry where it is defined (as timm's
    @register_model); cnndsl.layers imports every module of the package."""
    REGISTERED.append(cls())
    return cls


class LayerKind:
    """One layer kind. Subclasses set the class attributes and override what differs."""

    name: str = ""
    aliases: tuple[str, ...] = ()
    family: str = "other"  # input conv pool dense activation norm regularize reshape merge
    params: tuple[Param, ...] = ()
    doc: str = ""
    callable: bool = True  # False for kinds only the expander creates (ADD, CONCAT, INPUT)
    weighted: bool = False
    # `activation = relu` puts one after it: the docs' CONV, DWCONV and FC, not every
    # weighted kind (BIAS is weighted and took one, issue 17, F22)
    takes_activation: bool = False
    passive_tail: bool = False  # may follow the classifier (softmax, dropout, flatten)
    batch_norm: bool = False  # a residual whose body has one projects its shortcut with one
    logits_drop: bool = False  # last in the network, `logits=True` leaves it out (SOFTMAX)
    merge_builtin: str = ""  # the language's builtin that makes this kind (`concat`, `add`)
    # Other frameworks' words for this kind that are not its names (`mul`, `chunk`): an
    # unknown name among them gets "did you mean" this kind.
    spellings: tuple[str, ...] = ()
    min_inputs = 1
    max_inputs = 1
    draw: dict = {}  # graphviz attributes over the family's DRAW_STYLES ("label": a glyph)
    # Other frameworks' or papers' names that are not this kind but that a reader may write
    # for it: name (upper case, no `_`) -> the help an unknown-name error gives
    # (DEPTHTOSPACE -> PIXELSHUFFLE and how the two differ)
    foreign_names: dict = {}

    # -- binding arguments -----------------------------------------------------------
    def bind(self, args: list[tuple[Any, Span]], kwargs: list[tuple[str, Any, Span, Span]],
             span: Span) -> dict:
        """Positional and keyword arguments -> {param: coerced value}; defaults left None."""
        values: dict[str, Any] = {}
        positional = [p for p in self.params if not p.keyword_only] if args else ()
        if len(args) > len(positional):
            names = ", ".join(p.name for p in positional) or "no arguments"
            raise CnnArgumentError(
                f"{self.name} takes at most {len(positional)} positional argument"
                f"{'s' if len(positional) != 1 else ''} ({names}); got {len(args)}",
                args[len(positional)][1], help=self.signature())
        for param, (value, vspan) in zip(positional, args):
            values[param.name] = self.coerce(param, value, vspan)
        by_name = {}
        for param in self.params if kwargs else ():  # most calls give no keywords
            for key in (param.name, *param.aliases):
                by_name[key.lower()] = param
        for key, value, kspan, vspan in kwargs:
            param = by_name.get(key.lower())
            if param is None:
                hint = did_you_mean(key, by_name)
                raise CnnArgumentError(
                    f"{self.name} has no parameter `{key}`", kspan,
                    help=(f"did you mean `{hint}`? " if hint else "") + self.signature())
            if param.name in values:
                raise CnnArgumentError(f"{self.name}: `{param.name}` is given twice", kspan,
                                       help=self.signature())
            values[param.name] = self.coerce(param, value, vspan)
        for param in self.params:
            if param.name not in values:
                if param.default is REQUIRED:
                    raise CnnArgumentError(f"{self.name} needs `{param.name}`", span,
                                           help=self.signature())
                values[param.name] = param.default
        self.check_bound(values, span)
        return values

    def check_bound(self, values: dict, span: Span) -> None:
        """Cross-argument checks that need no shapes (override)."""

    def signature(self) -> str:
        names = ", ".join(p.name for p in self.params if not p.keyword_only)
        return f"{self.name}({names})" if names else f"{self.name} takes no arguments"

    def coerce(self, param: Param, value, span: Span):
        return coerce(self.name, param, value, span)

    # -- shapes and costs (override) ---------------------------------------------------
    def resolve(self, p: dict, ins: list[Shape], ctx: Context, site: Site) -> dict:
        """Fill the defaults that depend on the input shape or the spec's settings."""
        return p

    def insertions(self, p: dict, ins: list[Shape], ctx: Context, site: Site,
                   roles: list[str]) -> list[tuple[int, list[tuple[str, dict]]]]:
        """Layers to insert before some inputs (a residual projection, the classifier):
        [(input position, [(kind name, arguments), ...])]; `roles` are the inputs' roles."""
        return []

    def infer(self, p: dict, ins: list[Shape], ctx: Context, site: Site) -> Shape:
        return ins[0]

    def window(self, p: dict, ins: list[Shape]):
        """((kh, kw), (sh, sw), (dh, dw)) for the receptive field; None for pointwise layers.
        Upsampling layers give the input values one output reads (kh, dh in input pixels)
        and a fractional stride (Fraction(1, 2) for a factor 2)."""
        return None

    def reads(self, p: dict, ins: list[Shape], out: Shape, axis: int):
        """Which input positions each output position reads on one axis (0 rows, 1
        columns), for the receptive field: (step, first_last), where first_last(i) gives the
        first and last input position output i reads (None where it reads none; a third
        item, the distance between the positions read, for a dilated window), counting
        the padding as positions before the first and past the last, and output i + b reads
        what output i reads moved by a, for step = Fraction(a, b) (or a whole number a).
        None: output i reads
        input position i alone (pointwise layers)."""

    def count_params(self, p: dict, ins: list[Shape], out: Shape) -> tuple[int, int]:
        """(trainable parameters, non-trainable buffers)."""
        return 0, 0

    def count_macs(self, p: dict, ins: list[Shape], out: Shape) -> int:
        return 0

    def inputs_per_neuron(self, p: dict, ins: list[Shape], out: Shape, n_params: int) -> int:
        """Values one output neuron is connected to, bias included (the notes' "weights per
        neuron", for the summary's connections = neurons x this)."""
        if self.weighted:
            # params = out channels x (weights per neuron + bias): CONV k*k*cin/groups (+1)
            return n_params // out.c
        window = self.window(p, ins)
        if window is not None:
            (kh, kw), _, _ = window
            return kh * kw  # pooling: one window of one channel, no bias
        return 1  # elementwise (activations, DROPOUT) and copies (FLATTEN, CONCAT)

    def spelling_notes(self, written: str | None) -> list[str]:
        """Notes for a shape error of a layer written this way (`CONV2D`, `LINEAR`...): what
        a reader coming from another framework may have meant."""
        return []

    def explain(self, p: dict, ins: list[Shape], out: Shape, n_params: int) -> list[str]:
        """The lecture's arithmetic for this layer (`cnndsl expand --explain`): how its
        output size and its parameter count come out. Layers that only pass values through
        (activations, dropout) have nothing to show."""
        return []

    def recipe(self, p: dict, ins: list[Shape], out: Shape) -> Recipe:
        raise NotImplementedError(self.name)

    def label(self, p: dict) -> str:
        return self.name

    def style(self) -> dict:
        """How render draws this kind: its family's style with `draw` on top."""
        return {**DRAW_STYLES.get(self.family, DRAW_STYLES["other"]), **self.draw}

    paper_token: str = ""  # a regex for a paper's token for this kind (VGG's `conv3-64`)

    def from_paper_token(self, match) -> tuple[tuple, dict]:
        """(positional, keyword) argument values that a matched paper token stands for."""
        return (), {}

    def macro(self, values: dict) -> list[tuple[str, dict]] | None:
        """Kinds that stand for several layers (SEPCONV) return them here."""
        return None


def check_input_size(kind: str, param: str, given, actual: int, site: Site,
                     unit: str = "channels") -> None:
    """PyTorch's in_channels / in_features / num_features, when a spec writes them: they must
    be what the layer before produces (cnndsl takes them from there)."""
    if given is not None and given != actual:
        raise CnnShapeError(
            f"{kind}: {param}={given}, but its input has {actual:,} {unit}", site.span,
            help=f"leave {param} out: cnndsl takes it from the layer before")


def volume_in(kind: str, shape: Shape, site: Site) -> Shape:
    if not shape.is_volume:
        raise CnnShapeError(
            f"{kind} needs a volume HxWxC, but it receives a vector of {shape.c} values",
            site.span, help=f"put {kind} before the first FC layer")
    return shape


def pair_str(pair) -> str:
    return f"{pair[0]}x{pair[1]}"


# -- coercion -----------------------------------------------------------------------------

_BOOLS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}


def _type_error(kind, param, value, span, want):
    shown = f"`{value}`" if isinstance(value, Symbol) else repr(value) if not isinstance(
        value, tuple) else "x".join(map(str, value))
    raise CnnArgumentError(f"{kind}: `{param.name}` must be {want}, not {shown}", span)


def word_error(kind, param, value, span, want: str, words) -> CnnArgumentError:
    """A keyword that takes words (`pad=same`, `mode=bilinear`) given something else. A name
    is a word only where no variable or parameter has that name (values.name_value), so a
    name near none of the words is, as likely, a variable that is not defined there."""
    shown = f"`{value}`" if isinstance(value, Symbol) else repr(value) if not isinstance(
        value, tuple) else "x".join(map(str, value))
    help = None
    if isinstance(value, Symbol):
        hint = did_you_mean(value.lower(), words)
        help = f"did you mean `{hint}`?" if hint else (
            f"`{value}` is none of its words, and no variable or parameter `{value}` is "
            "defined where it is written")
    exc = CnnArgumentError(f"{kind}: `{param.name}` must be {want}, not {shown}", span,
                           help=help)
    exc.word = value  # the expander notes where the word is written (a def's argument)
    return exc


def _undefined(value, span):
    from ..errors import CnnNameError

    exc = CnnNameError(f"undefined variable `{value}`", span)
    exc.undefined = str(value)  # the expander adds 'did you mean' from the names in scope
    exc.word = value  # where it was written (values.Evaluator.name_value), if known
    raise exc


def _positive_int(kind, param, v, span, allow_zero=False):
    if isinstance(v, Symbol):
        _undefined(v, span)
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int):
        _type_error(kind, param, v, span, "a whole number")
    if v < 0 or (v == 0 and not allow_zero):
        _type_error(kind, param, v, span,
                    "zero or more" if allow_zero else "a positive whole number")
    return v


def coerce(kind: str, param: Param, value, span: Span):
    t = param.type
    if t in ("count", "int", "nonneg"):
        return _positive_int(kind, param, value, span, allow_zero=(t == "nonneg"))
    if t in ("pair", "pad"):
        if t == "pad" and isinstance(value, Symbol):
            if value.lower() in ("same", "valid"):
                return Symbol(value.lower())
            raise word_error(kind, param, value, span, "a number, HxW, `same` or `valid`",
                             ("same", "valid"))
        if isinstance(value, tuple):
            if len(value) != 2:
                _type_error(kind, param, value, span, "a number or HxW")
            return tuple(_positive_int(kind, param, v, span, allow_zero=(t == "pad"))
                         for v in value)
        v = _positive_int(kind, param, value, span, allow_zero=(t == "pad"))
        return (v, v)
    if t in ("float", "prob"):
        if isinstance(value, Symbol):
            _undefined(value, span)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            _type_error(kind, param, value, span, "a number")
        value = float(value)
        if not math.isfinite(value):
            _type_error(kind, param, value, span, "a finite number")
        if t == "prob" and not 0 <= value < 1:
            _type_error(kind, param, value, span, "a probability in [0, 1)")
        return value
    if t == "bool":
        if isinstance(value, Symbol) and value.lower() in _BOOLS:
            return _BOOLS[value.lower()]
        if value in (0, 1) and not isinstance(value, float):
            return bool(value)
        raise word_error(kind, param, value, span, "true or false", _BOOLS)
    if t == "rounding":
        if isinstance(value, Symbol) and value.lower() in ROUNDING_MODES:
            return value.lower()
        raise word_error(kind, param, value, span, "strict, floor or ceil", ROUNDING_MODES)
    raise AssertionError(t)
