"""`cnndsl bench`: one compiled model timed on every runtime a user could pick, each checked
against eager PyTorch (as Ultralytics' benchmark() does for export formats).

A runtime that cannot run here (onnxruntime not installed, no CUDA device) is a row that says
why, never an error.
"""
from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from .errors import UsageError

RUNTIMES = ("eager", "optimize", "compile", "onnxruntime", "onnxruntime-default")
# torch.compile costs half a minute to build, so it runs when asked for
DEFAULT_RUNTIMES = ("eager", "optimize", "onnxruntime", "onnxruntime-default")
DESCRIPTIONS = {
    "eager": "the compiled module as built (eval mode, no_grad)",
    "optimize": "BatchNorm folded, channels_last (cnndsl compile --optimize)",
    "compile": "torch.compile of the module (inductor)",
    "onnxruntime": "compile(..., runtime='onnxruntime'): the verified export, cnndsl's "
                   "session options",
    "onnxruntime-default": "the same export in a session with onnxruntime's default options",
}


@dataclass
class Result:
    """One runtime at one batch size."""

    runtime: str
    batch: int
    status: str  # "ok" | "skipped" | "failed"
    reason: str = ""  # why it was skipped or failed
    median_ms: float | None = None
    throughput: float | None = None  # images per second
    speedup: float | None = None  # eager's median / this median, same batch
    max_rel_diff: float | None = None  # max |out - eager| / max |eager|
    mode: str = "inference"  # "inference" | "train" (one SGD step per call)


class Skip(Exception):
    """This runtime cannot run here; the message says why."""


def parse_batches(text: str) -> tuple[int, ...]:
    try:
        batches = tuple(int(b) for b in str(text).split(",") if b.strip())
    except ValueError:
        raise UsageError(f"--batch takes sizes separated by commas, e.g. 1,8 (got {text!r})") \
            from None
    if not batches or any(b <= 0 for b in batches):
        raise UsageError(f"--batch sizes must be positive (got {text!r})")
    return batches


def parse_runtimes(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in str(text).split(",") if n.strip())
    unknown = [n for n in names if n not in RUNTIMES]
    if unknown or not names:
        raise UsageError(f"unknown runtime {', '.join(unknown) or repr(text)}: choose from "
                         f"{', '.join(RUNTIMES)}")
    return tuple(dict.fromkeys(("eager", *names)))  # eager is the reference, always first


def run_bench(model, *, batches=(1,), runtimes=DEFAULT_RUNTIMES, device: str = "cpu",
              threads: int | None = None, runs: int = 15, warmup: int = 3,
              progress: Callable[[str], None] | None = None) -> list[Result]:
    """Time `model` (a module from cnndsl.compile, on the CPU, eval mode) on each runtime.

    Each runtime is built once, checked on the same input against eager, then timed: `warmup`
    calls, then the median of `runs` calls per batch size.
    """
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    device = device or "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        return [Result(r, b, "skipped", "no CUDA device here") for b in batches
                for r in parse_runtimes(",".join(runtimes))]
    model = model.eval().to(device)
    shape = model.cnndsl_info["input_shape"]
    results: list[Result] = []
    eager_ms: dict[int, float] = {}
    for name in parse_runtimes(",".join(runtimes)):
        say = progress or (lambda text: None)
        say(f"{name}: building")
        try:
            runner = BUILDERS[name](model, device, threads)
        except Skip as exc:
            results += [Result(name, b, "skipped", str(exc)) for b in batches]
            continue
        except Exception as exc:  # a runtime that fails to build is reported, not raised
            results += [Result(name, b, "failed", _first_line(exc)) for b in batches]
            continue
        for b in batches:
            say(f"{name}: batch {b}")
            x = torch.randn(b, *shape, generator=torch.Generator().manual_seed(b)).to(device)
            try:
                with torch.inference_mode():
                    expected = model(x)
                    got = runner(x)
                    diff = _relative_difference(got, expected)
                    ms = _median_ms(runner, x, runs, warmup, device)
            except Exception as exc:
                results.append(Result(name, b, "failed", _first_line(exc)))
                continue
            if name == "eager":
                eager_ms[b] = ms
            base = eager_ms.get(b)
            results.append(Result(name, b, "ok", "", ms, 1000.0 * b / ms,
                                  base / ms if base else None, diff))
    return results


# -- training: one SGD step per call ---------------------------------------------------------

TRAIN_RUNTIMES = ("eager", "compile")  # the others are inference only
DEFAULT_TRAIN_RUNTIMES = ("eager",)
LEARNING_RATE = 0.01
# zoo specs named otherwise than the torchvision builder they write
TORCHVISION_ALIASES = {"vgg_a": "vgg11", "vgg_b": "vgg13", "vgg_d": "vgg16", "vgg_e": "vgg19"}
TORCHVISION_KEYWORDS = {"googlenet": {"aux_logits": False, "init_weights": False},
                        "inception_v3": {"aux_logits": False, "init_weights": False}}


def torchvision_twin(model):
    """torchvision's builder for the zoo spec `model` was compiled from, or None: `zoo:NAME`
    where NAME (or its alias) is one of torchvision.models' classifiers. None too when
    torchvision is not installed (the caller says so)."""
    info = getattr(model, "cnndsl_info", {}) or {}
    name = str(info.get("spec_name") or "")
    if not name.startswith("zoo:"):
        return None
    name = name.removeprefix("zoo:")
    name = TORCHVISION_ALIASES.get(name, name)
    try:
        import torchvision
    except ImportError:
        return None
    return name if name in torchvision.models.list_models(module=torchvision.models) else None


def _torchvision_model(name: str, classes: int):
    import torchvision

    return torchvision.models.get_model(name, weights=None, num_classes=classes,
                                        **TORCHVISION_KEYWORDS.get(name, {}))


def check_trainable(model) -> int:
    """The number of class scores the model ends in; UsageError unless it is a classifier with
    logits out (CrossEntropyLoss applies its own softmax)."""
    import torch

    info = getattr(model, "cnndsl_info", {}) or {}
    shape = list(info.get("output_shape") or [])
    if len(shape) != 1:
        out = "x".join(str(d) for d in shape) or "unknown"
        raise UsageError(f"--train times a classifier's step (cross-entropy over class scores); "
                         f"this model's output is {out}, not one score per class")
    leaves = [m for m in model.modules() if not list(m.children())]
    if leaves and isinstance(leaves[-1], (torch.nn.Softmax, torch.nn.LogSoftmax)):
        raise UsageError("the model ends in a softmax: compile it with logits=True to train "
                         "(CrossEntropyLoss applies its own)")
    return int(shape[0])


class _Step:
    """One training step of `module` (train mode): forward, cross-entropy, backward, SGD."""

    def __init__(self, module, runner, lr: float):
        import torch

        self.module, self.runner = module.train(), runner
        self.optimizer = torch.optim.SGD(module.parameters(), lr=lr, momentum=0.9)
        self.loss_fn = torch.nn.CrossEntropyLoss()

    def __call__(self, x, y):
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.runner(x), y)
        loss.backward()
        self.optimizer.step()
        return loss


def _one_step(step: _Step, x, y, seed: int):
    """The loss and each parameter's update (new - old) after one step from where it is, with
    the random generators (dropout's masks) seeded alike for every model."""
    import torch

    before = [p.detach().clone() for p in step.module.parameters()]
    torch.manual_seed(seed)
    loss = float(step(x, y).detach())
    updates = [p.detach() - old for p, old in zip(step.module.parameters(), before)]
    return loss, updates


def _step_difference(got, expected) -> float:
    """max over the loss and every parameter tensor of |ours - theirs| / max |theirs|: the
    loss, and the update each tensor received, relative to that update's largest magnitude
    (stricter than comparing the updated parameters, which the step barely moves)."""
    (loss, updates), (ref_loss, ref_updates) = got, expected
    if len(updates) != len(ref_updates):
        raise ValueError(f"{len(updates)} parameter tensors against {len(ref_updates)}")
    worst = abs(loss - ref_loss) / (abs(ref_loss) or 1.0)
    for ours, theirs in zip(updates, ref_updates):
        worst = max(worst, _relative_difference(ours, theirs))
    return worst


def run_train_bench(model, *, batches=(8,), runtimes=DEFAULT_TRAIN_RUNTIMES, device: str = "cpu",
                    threads: int | None = None, runs: int = 15, warmup: int = 3,
                    lr: float = LEARNING_RATE, torchvision: bool = True,
                    progress: Callable[[str], None] | None = None) -> list[Result]:
    """Time one training step of `model` (a classifier from cnndsl.compile with logits=True):
    forward, CrossEntropyLoss, backward and an SGD step (momentum 0.9), train mode, random
    labels from the model's classes, per batch size.

    Where the model is a zoo spec of a torchvision classifier (and `torchvision`), a
    `torchvision` row times torchvision's same model the same way and is the reference: its
    weights are copied onto ours (cnndsl.transfer_weights) so every row starts from the same
    weights, and each row's `max_rel_diff` compares the loss and every parameter's update
    after one step on the same batch and labels with torchvision's. Otherwise eager is the
    reference. Runtimes other than eager and compile are inference only: skipped rows.
    """
    import torch

    from .weights import transfer_weights

    say = progress or (lambda text: None)
    if threads is not None:
        torch.set_num_threads(threads)
    device = device or "cpu"
    classes = check_trainable(model)
    names = parse_runtimes(",".join(runtimes))
    twin = torchvision_twin(model) if torchvision else None
    if device == "cuda" and not torch.cuda.is_available():
        return [Result(r, b, "skipped", "no CUDA device here", mode="train") for b in batches
                for r in (("torchvision",) if twin else ()) + names]
    base = copy.deepcopy(model).to(device).train()
    shape = base.cnndsl_info["input_shape"]
    results: list[Result] = []
    entries: list[tuple[str, object]] = []  # (row name, the module to train or a Skip)
    if twin:
        say(f"torchvision: building {twin}")
        try:
            theirs = _torchvision_model(twin, classes).to(device)
            # paired by data flow; not checked here: the rows' own comparison with
            # torchvision's step (max_rel_diff) is the check, and it reports, not refuses
            transfer_weights(theirs, base, source_name=f"torchvision's {twin}", verify=False)
            entries.append(("torchvision", theirs))
        except Exception as exc:  # noqa: BLE001 (the spec was changed: -D, --classes)
            entries.append(("torchvision", Skip(f"torchvision's {twin} does not match this "
                                                f"model: {_first_line(exc)}")))
    entries += [(name, base) for name in names]
    reference: dict[int, tuple] = {}  # batch -> (loss, updates) of the first row that ran
    base_ms: dict[int, float] = {}
    for name, module in entries:
        if isinstance(module, Skip):
            results += [Result(name, b, "skipped", str(module), mode="train") for b in batches]
            continue
        if name not in TRAIN_RUNTIMES and name != "torchvision":
            results += [Result(name, b, "skipped", "inference only", mode="train")
                        for b in batches]
            continue
        for b in batches:
            say(f"{name}: training step, batch {b}")
            gen = torch.Generator().manual_seed(b)
            x = torch.randn(b, *shape, generator=gen).to(device)
            y = torch.randint(0, classes, (b,), generator=gen).to(device)
            try:
                trained = copy.deepcopy(module)  # every row steps from the same weights
                runner = torch.compile(trained) if name == "compile" else trained
                step = _Step(trained, runner, lr)
                outcome = _one_step(step, x, y, seed=b)
                if b not in reference:
                    reference[b] = outcome
                diff = _step_difference(outcome, reference[b])
                ms = _median_ms(lambda inputs, step=step, y=y: step(inputs, y), x, runs,
                                warmup, device)
            except Exception as exc:  # noqa: BLE001 (a row that says why, never a traceback)
                results.append(Result(name, b, "failed", _first_line(exc), mode="train"))
                continue
            if b not in base_ms:
                base_ms[b] = ms
            results.append(Result(name, b, "ok", "", ms, 1000.0 * b / ms, base_ms[b] / ms,
                                  diff, mode="train"))
    return results


def _relative_difference(got, expected) -> float:
    import torch

    got = torch.as_tensor(got).to(expected.device, expected.dtype)
    scale = float(expected.abs().max()) or 1.0
    return float((got - expected).abs().max()) / scale


def _median_ms(runner, x, runs: int, warmup: int, device: str) -> float:
    import torch

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for _ in range(warmup):
        runner(x)
    sync()
    times = []
    for _ in range(max(1, runs)):
        start = time.perf_counter()
        runner(x)
        sync()
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().split("\n")[0] or type(exc).__name__
    return text[:200]


# -- the runtimes ---------------------------------------------------------------------------

def _eager(model, device, threads):
    return model


def _optimize(model, device, threads):
    from .torch_backend import optimize_for_inference

    return optimize_for_inference(copy.deepcopy(model))


def _compile(model, device, threads):
    import torch

    compiled = torch.compile(copy.deepcopy(model))
    return compiled


def _onnxruntime(model, device, threads, tuned=True):
    try:
        import onnxruntime
    except ImportError:
        raise Skip("onnxruntime is not installed (pip install onnxruntime)") from None
    if device != "cpu" and "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        raise Skip("onnxruntime has no CUDA provider here (pip install onnxruntime-gpu)")
    from .onnx_runtime import to_onnxruntime

    if not tuned and threads is None:
        threads = 0  # onnxruntime's own default: one thread per core
    return to_onnxruntime(copy.deepcopy(model).cpu(), threads=threads, device=device,
                          tuned=tuned)


def _onnxruntime_default(model, device, threads):
    return _onnxruntime(model, device, threads, tuned=False)


BUILDERS = {"eager": _eager, "optimize": _optimize, "compile": _compile,
            "onnxruntime": _onnxruntime, "onnxruntime-default": _onnxruntime_default}


# -- reports --------------------------------------------------------------------------------

COLUMNS = ("runtime", "batch", "median ms", "images/s", "speed-up", "max rel diff", "note")


def rows_of(results: list[Result]) -> list[tuple[str, ...]]:
    rows = []
    for r in results:
        if r.status != "ok":
            rows.append((r.runtime, str(r.batch), "-", "-", "-", "-", f"{r.status}: {r.reason}"))
            continue
        rows.append((r.runtime, str(r.batch), f"{r.median_ms:.2f}", f"{r.throughput:,.1f}",
                     f"{r.speedup:.2f}x" if r.speedup else "-", f"{r.max_rel_diff:.1e}", ""))
    return rows


def format_table(results: list[Result]) -> str:
    rows = [COLUMNS, *rows_of(results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS) - 1)]
    lines = []
    for row in rows:
        cells = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(
            zip(row, widths))]
        lines.append("  ".join(cells + [row[-1]]).rstrip())
    return "\n".join(lines) + "\n"


def format_markdown(results: list[Result]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in rows_of(results)]
    return "\n".join(lines) + "\n"


def to_json(results: list[Result]) -> list[dict]:
    return [asdict(r) for r in results]
