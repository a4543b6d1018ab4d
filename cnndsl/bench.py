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

RUNTIMES = ("torchvision", "eager", "optimize", "compile", "bf16", "cudagraphs", "onnxruntime",
            "onnxruntime-default")
# torch.compile costs half a minute to build, so it runs when asked for (or on a GPU)
DEFAULT_RUNTIMES = ("torchvision", "eager", "optimize", "onnxruntime", "onnxruntime-default")
CUDA_RUNTIMES = ("torchvision", "eager", "bf16", "compile", "cudagraphs", "onnxruntime")
DESCRIPTIONS = {
    "torchvision": "torchvision's same model with the same weights (zoo specs of torchvision "
                   "models): the reference",
    "eager": "the compiled module as built (eval mode, no_grad)",
    "optimize": "BatchNorm folded, channels_last (cnndsl compile --optimize)",
    "compile": "torch.compile of the module (inductor)",
    "bf16": "channels_last weights and input, bfloat16 autocast",
    "cudagraphs": "the module captured in a CUDA graph per input shape, replayed",
    "onnxruntime": "compile(..., runtime='onnxruntime'): the verified export, cnndsl's "
                   "session options, inputs and outputs bound in place",
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
    min_ms: float | None = None  # the least disturbed call (a shared machine's load is bursty)
    throughput: float | None = None  # images per second
    speedup: float | None = None  # the reference's median / this median, same batch
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
    """The runtimes named in `text`, eager always among them (the reference for outputs), in
    the order of RUNTIMES (torchvision first, then eager)."""
    names = tuple(n.strip() for n in str(text).split(",") if n.strip())
    unknown = [n for n in names if n not in RUNTIMES]
    if unknown or not names:
        raise UsageError(f"unknown runtime {', '.join(unknown) or repr(text)}: choose from "
                         f"{', '.join(RUNTIMES)}")
    wanted = {"eager", *names}
    return tuple(n for n in RUNTIMES if n in wanted)


def time_rounds(calls: dict[str, Callable[[], object]], runs: int, warmup: int,
                sync: Callable[[], None] = lambda: None) -> dict[str, list[float]]:
    """Milliseconds of each call of each zero-argument callable, timed in rounds: every round
    calls each once, in an order rotated by one per round, so that a change in the machine's
    load (a shared machine) hits all of them alike."""
    names = list(calls)
    for _ in range(warmup):
        for name in names:
            calls[name]()
    sync()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(max(1, runs)):
        shift = r % len(names) if names else 0
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            calls[name]()
            sync()
            times[name].append((time.perf_counter() - start) * 1000.0)
    return times


def time_interleaved(calls: dict[str, Callable[[], object]], runs: int, warmup: int,
                     sync: Callable[[], None] = lambda: None) -> dict[str, float]:
    """The median milliseconds per call of each callable, timed in rounds (time_rounds)."""
    return {name: statistics.median(values)
            for name, values in time_rounds(calls, runs, warmup, sync).items()}


def _sync(device: str) -> Callable[[], None]:
    import torch

    return torch.cuda.synchronize if device == "cuda" else (lambda: None)


def run_bench(model, *, batches=(1,), runtimes=DEFAULT_RUNTIMES, device: str = "cpu",
              threads: int | None = None, runs: int = 15, warmup: int = 3,
              progress: Callable[[str], None] | None = None) -> list[Result]:
    """Time `model` (a module from cnndsl.compile, on the CPU, eval mode) on each runtime.

    Each runtime is built once. Per batch size, each is checked on the same input against
    eager, called `warmup` times, then timed in `runs` interleaved rounds (time_interleaved):
    the median. The speed-up is over torchvision's same model where that row ran (a zoo spec
    of a torchvision classifier), else over eager.
    """
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    device = device or "cpu"
    say = progress or (lambda text: None)
    names = parse_runtimes(",".join(runtimes))
    if device == "cuda" and not torch.cuda.is_available():
        return [Result(r, b, "skipped", "no CUDA device here") for r in names for b in batches]
    model = model.eval().to(device)
    shape = model.cnndsl_info["input_shape"]
    rows: dict[tuple[str, int], Result] = {}
    runners = {}
    for name in names:
        say(f"{name}: building")
        try:
            runners[name] = BUILDERS[name](model, device, threads)
        except Skip as exc:
            rows.update({(name, b): Result(name, b, "skipped", str(exc)) for b in batches})
        except Exception as exc:  # noqa: BLE001 (a runtime that fails to build is a row)
            rows.update({(name, b): Result(name, b, "failed", _first_line(exc))
                         for b in batches})
    for b in batches:
        x = torch.randn(b, *shape, generator=torch.Generator().manual_seed(b)).to(device)
        checked: dict[str, float] = {}
        with torch.inference_mode():
            expected = model(x)
            for name, runner in runners.items():
                say(f"{name}: checking batch {b}")
                try:
                    checked[name] = _relative_difference(runner(x), expected)
                except Exception as exc:  # noqa: BLE001
                    rows[name, b] = Result(name, b, "failed", _first_line(exc))
            say(f"batch {b}: timing {', '.join(checked)} interleaved, {runs} rounds")
            samples = time_rounds(
                {name: (lambda runner=runners[name], x=x: runner(x)) for name in checked},
                runs, warmup, _sync(device))
        medians = {name: statistics.median(values) for name, values in samples.items()}
        reference = medians.get("torchvision", medians.get("eager"))
        for name, ms in medians.items():
            rows[name, b] = Result(name, b, "ok", "", ms, min(samples[name]), 1000.0 * b / ms,
                                   reference / ms if reference else None, checked[name])
    return [rows[name, b] for name in names for b in batches]


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
        rows = (("torchvision",) if twin else ()) + tuple(n for n in names if n != "torchvision")
        return [Result(r, b, "skipped", "no CUDA device here", mode="train") for r in rows
                for b in batches]
    base = copy.deepcopy(model).to(device).train()
    shape = base.cnndsl_info["input_shape"]
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
    entries += [(name, base) for name in names if name != "torchvision"]
    rows: dict[tuple[str, int], Result] = {}
    for name, module in entries:
        if isinstance(module, Skip):
            rows.update({(name, b): Result(name, b, "skipped", str(module), mode="train")
                         for b in batches})
        elif name not in TRAIN_RUNTIMES and name != "torchvision":
            rows.update({(name, b): Result(name, b, "skipped", "inference only", mode="train")
                         for b in batches})
    for b in batches:
        gen = torch.Generator().manual_seed(b)
        x = torch.randn(b, *shape, generator=gen).to(device)
        y = torch.randint(0, classes, (b,), generator=gen).to(device)
        reference = None  # (loss, updates) of the first row that ran: torchvision's or eager's
        steps: dict[str, tuple[_Step, float]] = {}
        for name, module in entries:
            if (name, b) in rows:
                continue
            say(f"{name}: training step, batch {b}")
            try:
                trained = copy.deepcopy(module)  # every row steps from the same weights
                runner = torch.compile(trained) if name == "compile" else trained
                step = _Step(trained, runner, lr)
                outcome = _one_step(step, x, y, seed=b)
                reference = reference or outcome
                steps[name] = (step, _step_difference(outcome, reference))
            except Exception as exc:  # noqa: BLE001 (a row that says why, never a traceback)
                rows[name, b] = Result(name, b, "failed", _first_line(exc), mode="train")
        say(f"batch {b}: timing {', '.join(steps)} interleaved, {runs} rounds")
        samples = time_rounds({name: (lambda step=step, x=x, y=y: step(x, y))
                               for name, (step, _) in steps.items()},
                              runs, warmup, _sync(device))
        medians = {name: statistics.median(values) for name, values in samples.items()}
        base_ms = next(iter(medians.values()), None)
        for name, ms in medians.items():
            rows[name, b] = Result(name, b, "ok", "", ms, min(samples[name]), 1000.0 * b / ms,
                                   base_ms / ms, steps[name][1], mode="train")
    return [rows[name, b] for name, _ in entries for b in batches]


# -- data-parallel training: DistributedDataParallel over gloo, one process per rank ---------

def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ddp_batch(step: int, size: int, shape, classes: int):
    """The global batch of training step `step` (the same on every rank): inputs and labels.
    Rank r of w trains on rows [r * size / w, (r + 1) * size / w)."""
    import torch

    gen = torch.Generator().manual_seed(1000 + step)
    return (torch.randn(size, *shape, generator=gen),
            torch.randint(0, classes, (size,), generator=gen))


def _ddp_worker(rank: int, world: int, port: int, spec, options: dict, batch: int, steps: int,
                warmup: int, lr: float, threads: int, queue) -> None:
    """One rank: compile the spec (the same seed everywhere; DDP broadcasts rank 0's weights
    anyway), wrap it in DistributedDataParallel (gloo), train `warmup` + `steps` SGD steps on
    this rank's share of each global batch, and put (rank, seconds per timed step, the final
    parameters) on `queue`."""
    import os

    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from .api import compile

    torch.set_num_threads(threads)
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = "127.0.0.1", str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        model = compile(spec, seed=0, logits=True, **options).train()
        shape, classes = model.cnndsl_info["input_shape"], check_trainable(model)
        ddp = DistributedDataParallel(model)
        step = _Step(model, ddp, lr)
        times = []
        for i in range(warmup + steps):
            x, y = ddp_batch(i, batch * world, shape, classes)
            x, y = x[rank * batch:(rank + 1) * batch], y[rank * batch:(rank + 1) * batch]
            dist.barrier()
            start = time.perf_counter()
            step(x, y)
            if i >= warmup:
                times.append(time.perf_counter() - start)
        # numpy arrays travel by value (a tensor would travel as a shared-memory handle that
        # dies with this process)
        params = [p.detach().numpy().copy() for p in model.parameters()]
        queue.put((rank, statistics.median(times) if times else 0.0, params))
    finally:
        dist.destroy_process_group()


def train_ddp(spec, *, world: int = 2, batch: int = 8, steps: int = 3, warmup: int = 0,
              lr: float = LEARNING_RATE, threads: int = 1,
              **options) -> list[tuple[int, float, list]]:
    """Train the spec with DistributedDataParallel in `world` processes on the CPU (gloo):
    `batch` images per rank per step (a global batch of world x batch, see ddp_batch),
    `warmup` untimed steps then `steps` timed ones, `threads` torch threads per process.
    `options` go to cnndsl.compile (input=, classes=, variables). Returns, per rank in order,
    (rank, median seconds per step, the final parameters)."""
    import torch.multiprocessing as mp

    context = mp.get_context("spawn")
    queue = context.SimpleQueue()
    workers = mp.start_processes(_ddp_worker, args=(world, _free_port(), spec, options, batch,
                                                    steps, warmup, lr, threads, queue),
                                 nprocs=world, join=False, start_method="spawn")
    import torch

    results = []  # read while the ranks run: a rank's put blocks until the pipe is read
    while len(results) < world:
        if not queue.empty():
            results.append(queue.get())
        elif workers.join(timeout=0.2):  # all exited (an error in a rank is raised here)
            while not queue.empty():
                results.append(queue.get())
            if len(results) < world:
                raise RuntimeError(f"{world - len(results)} of {world} DDP ranks ended "
                                   "without a result")
    workers.join()
    return sorted(((rank, seconds, [torch.from_numpy(a) for a in params])
                   for rank, seconds, params in results), key=lambda r: r[0])


def run_ddp_bench(spec, *, worlds=(1, 2), batch: int = 8, runs: int = 5, warmup: int = 2,
                  threads: int = 1, progress: Callable[[str], None] | None = None,
                  **options) -> list[Result]:
    """Training throughput with 1, 2, ... DDP processes (`worlds`), `batch` images per
    process per step (weak scaling: the global batch grows with the processes), `threads`
    torch threads each. A row per process count: `runtime` "ddp-N", `batch` the global
    batch, the median step time (the slowest rank's), images per second, the speed-up in
    throughput over the first row, and `max_rel_diff` the largest difference between any
    rank's parameters and rank 0's after the run (0: the ranks stayed in sync)."""
    say = progress or (lambda text: None)
    results, base = [], None
    for world in worlds:
        say(f"ddp: {world} process{'es' if world > 1 else ''}, {warmup} + {runs} steps")
        try:
            ranks = train_ddp(spec, world=world, batch=batch, steps=runs, warmup=warmup,
                              threads=threads, **options)
        except Exception as exc:  # noqa: BLE001 (a row that says why)
            results.append(Result(f"ddp-{world}", batch * world, "failed", _first_line(exc),
                                  mode="train"))
            continue
        seconds = max(r[1] for r in ranks)
        drift = max((_relative_difference(p, q) for r in ranks[1:]
                     for p, q in zip(r[2], ranks[0][2])), default=0.0)
        throughput = batch * world / seconds
        base = base or throughput
        results.append(Result(f"ddp-{world}", batch * world, "ok", "", seconds * 1000.0, None,
                              throughput, throughput / base, drift, mode="train"))
    return results


def _relative_difference(got, expected) -> float:
    import torch

    got = torch.as_tensor(got).to(expected.device, expected.dtype)
    scale = float(expected.abs().max()) or 1.0
    return float((got - expected).abs().max()) / scale


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().split("\n")[0] or type(exc).__name__
    return text[:200]


# -- the runtimes ---------------------------------------------------------------------------

def _torchvision(model, device, threads):
    """torchvision's same model with the compiled model's weights (transfer_weights)."""
    from .weights import transfer_weights

    twin = torchvision_twin(model)
    if twin is None:
        raise Skip("no torchvision model for this spec (zoo specs of torchvision classifiers)")
    theirs = _torchvision_model(twin, int(model.cnndsl_info["output_shape"][0]))
    try:
        transfer_weights(model, theirs, source_name="the compiled model")
    except Exception as exc:  # noqa: BLE001 (the spec was changed: -D, --input)
        raise Skip(f"torchvision's {twin} does not match this model: {_first_line(exc)}") \
            from None
    return theirs.eval().to(device)


def _eager(model, device, threads):
    return model


def _optimize(model, device, threads):
    from .torch_backend import optimize_for_inference

    return optimize_for_inference(copy.deepcopy(model))


def _compile(model, device, threads):
    import torch

    compiled = torch.compile(copy.deepcopy(model))
    return compiled


def _bf16(model, device, threads):
    """channels_last weights and input under bfloat16 autocast (float32 out)."""
    import torch

    module = copy.deepcopy(model).to(memory_format=torch.channels_last)

    def run(x):
        with torch.autocast(device_type=device, dtype=torch.bfloat16):
            return module(x.contiguous(memory_format=torch.channels_last)).float()

    return run


class _CudaGraphs:
    """The module captured in a CUDA graph per input shape (after warm-up calls on a side
    stream, as torch.cuda.graphs' docs do), then replayed: the input is copied into the
    graph's static input; the output is the graph's static output, overwritten by the next
    call."""

    def __init__(self, module):
        self.module, self.graphs = module, {}

    def __call__(self, x):
        import torch

        key = (tuple(x.shape), x.dtype)
        if key not in self.graphs:
            static_in = x.clone()
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(3):
                    self.module(static_in)
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = self.module(static_in)
            self.graphs[key] = (graph, static_in, static_out)
        graph, static_in, static_out = self.graphs[key]
        static_in.copy_(x)
        graph.replay()
        return static_out


def _cudagraphs(model, device, threads):
    if device != "cuda":
        raise Skip("CUDA graphs need a CUDA device (--device cuda)")
    return _CudaGraphs(copy.deepcopy(model))


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


BUILDERS = {"torchvision": _torchvision, "eager": _eager, "optimize": _optimize,
            "compile": _compile, "bf16": _bf16, "cudagraphs": _cudagraphs,
            "onnxruntime": _onnxruntime, "onnxruntime-default": _onnxruntime_default}


# -- reports --------------------------------------------------------------------------------

COLUMNS = ("runtime", "batch", "median ms", "min ms", "images/s", "speed-up", "max rel diff",
           "note")


def rows_of(results: list[Result]) -> list[tuple[str, ...]]:
    rows = []
    for r in results:
        if r.status != "ok":
            rows.append((r.runtime, str(r.batch), "-", "-", "-", "-", "-",
                         f"{r.status}: {r.reason}"))
            continue
        least = "-" if r.min_ms is None else f"{r.min_ms:.2f}"
        rows.append((r.runtime, str(r.batch), f"{r.median_ms:.2f}", least, f"{r.throughput:,.1f}",
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
