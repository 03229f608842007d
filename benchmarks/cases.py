"""The benchmark cases. Each yields Rows: what was measured, both medians, the ratio and its target.

Every case builds its own networks, so cases can run alone (`python -m benchmarks.run --only build`).
"""

from __future__ import annotations

import io
import os
import resource
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from builder import (
    Design,
    DesignError,
    build,
    dry_run,
    example_input,
    example_names,
    graph,
    load_example,
    load_params,
    save_params,
    save_safetensors,
    summary,
)
from builder.build import clear_caches
from builder.diagram import forget_drawings
from builder.table import forget_summaries

from .timing import Comparison, compare


@dataclass(frozen=True)
class Row:
    benchmark: str
    case: str
    ours: str  # formatted figure
    theirs: str
    ratio: float | None
    target: str  # e.g. "≤ 1.2"
    met: bool | None  # None: informational, no target

    @staticmethod
    def of(benchmark: str, case: str, c: Comparison, limit: float, *, at_least: bool = False) -> Row:
        met = c.ratio >= limit if at_least else c.ratio <= limit
        return Row(benchmark, case, _ms(c.ours), _ms(c.theirs), c.ratio, f"{'≥' if at_least else '≤'} {limit}", met)


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms" if seconds < 10 else f"{seconds:.1f} s"


# -- networks: the same structure as a design and by hand ---------------------------------------------------

WIDTH = 32


def mixed_design(n: int) -> Design:
    """n layers repeating [LazyLinear(32), ReLU, the shared Linear(32, 32), ReLU]: lazy and shared."""
    pattern = [{"type": "LazyLinear", "out_features": WIDTH}, {"type": "ReLU"}, {"shared": "s"}, {"type": "ReLU"}]
    return Design.from_dict(
        {
            "format": 1,
            "name": f"mixed{n}",
            "input": {"shape": [8, WIDTH]},
            "shared": {"s": {"type": "Linear", "in_features": WIDTH, "out_features": WIDTH}},
            "layers": [pattern[i % 4] for i in range(n)],
        }
    )


def mixed_by_hand(n: int) -> nn.Module:
    """The same network written by hand, with the chapter's dry run to materialize the lazy layers."""
    shared = nn.Linear(WIDTH, WIDTH)
    make: list[Callable[[], nn.Module]] = [lambda: nn.LazyLinear(WIDTH), nn.ReLU, lambda: shared, nn.ReLU]
    net = nn.Sequential(*(make[i % 4]() for i in range(n)))
    with torch.no_grad():
        net(torch.randn(8, WIDTH))
    return net


# -- 1. build ------------------------------------------------------------------------------------------------


def bench_build(quick: bool) -> Iterator[Row]:
    # A 10-layer build takes under a millisecond: the median of 15 such samples moves by several percent from run
    # to run, so the small sizes take more samples (about 0.2 s and 0.4 s of them).
    for n, repeats in ((10, 3), (100, 3)) if quick else ((10, 101), (100, 41), (1000, 15)):
        design = mixed_design(n)
        c = compare(lambda d=design: build(d), lambda n=n: mixed_by_hand(n), repeats=repeats)
        yield Row.of("build", f"{n} layers (lazy + shared) vs construction + dry run", c, 1.2)
    # The first build of a design also dry-runs it on the meta device (budgets checked before allocating).
    n = 100
    design = mixed_design(n)

    def first_build() -> None:
        clear_caches()
        build(design)

    c = compare(first_build, lambda: mixed_by_hand(n), repeats=3 if quick else 9)
    yield Row(
        "build",
        f"{n} layers, first build of a design (includes the meta dry run)",
        _ms(c.ours),
        _ms(c.theirs),
        c.ratio,
        "(info)",
        None,
    )
    yield from _build_resnet18(quick)
    yield from _edit_dry_run(quick)


def distinct_design(n: int) -> Design:
    """n layers, no two alike: [LazyLinear(16 + i), ReLU] for i < n / 2 (every layer is a new question)."""
    layers: list[dict[str, Any]] = []
    for i in range(n // 2):
        layers += [{"type": "LazyLinear", "out_features": 16 + i}, {"type": "ReLU"}]
    return Design.from_dict({"format": 2, "name": f"distinct{n}", "input": {"shape": [8, WIDTH]}, "layers": layers})


def _edit_dry_run(quick: bool) -> Iterator[Row]:
    """One edit near the end of a long design: the dry run re-runs on meta only what the edit changed."""
    n = 100 if quick else 500
    at = n - 20  # the edited node: layers[480] of 500
    data = distinct_design(n).to_dict()
    widths = iter(range(10_000, 20_000))

    def edited() -> None:  # a new width each time: a design (and a node question) never seen before
        layers = [*data["layers"][:at], {"type": "LazyLinear", "out_features": next(widths)}, *data["layers"][at + 1 :]]
        dry_run(Design.from_dict({**data, "layers": layers}))

    def full() -> None:
        clear_caches()
        dry_run(Design.from_dict(data))

    full()
    c = compare(edited, full, repeats=3 if quick else 9)
    yield Row.of("build", f"editing node {at} of a {n}-layer design: dry run vs a full dry run", c, 0.15)


def _build_resnet18(quick: bool) -> Iterator[Row]:
    """examples/resnet18.json (flow blocks: residual skips) against d2l's ResNet18().net and its dry run."""
    from .resnet import ResNet18

    design = load_example("resnet18")
    x = example_input(design)

    def by_hand() -> nn.Module:
        net = ResNet18().net
        with torch.no_grad():
            net(x)  # the chapter's dry run: materializes the lazy layers
        return net

    build(design)  # its meta dry run has passed (as on every page after the first view)
    c = compare(lambda: build(design), by_hand, repeats=3 if quick else 15)
    yield Row.of("build", "ResNet-18 (1, 1, 96, 96), flow blocks vs construction + dry run", c, 1.2)

    def first_build() -> None:
        clear_caches()
        build(design)

    c = compare(first_build, by_hand, repeats=2 if quick else 7)
    yield Row(
        "build",
        "ResNet-18, first build of the design (includes the meta dry run)",
        _ms(c.ours),
        _ms(c.theirs),
        c.ratio,
        "(info)",
        None,
    )


# -- 2. forward + backward -----------------------------------------------------------------------------------


def bench_train_step(quick: bool) -> Iterator[Row]:
    design = Design.from_dict(
        {
            "format": 1,
            "input": {"shape": [64, 256]},
            "shared": {"s": {"type": "Linear", "in_features": 256, "out_features": 256}},
            "layers": [
                {"type": "Linear", "in_features": 256, "out_features": 256},
                {"type": "ReLU"},
                {"shared": "s"},
                {"type": "ReLU"},
                {"shared": "s"},
                {"type": "ReLU"},
                {"type": "Linear", "in_features": 256, "out_features": 10},
            ],
        }
    )
    shared = nn.Linear(256, 256)
    theirs = nn.Sequential(nn.Linear(256, 256), nn.ReLU(), shared, nn.ReLU(), shared, nn.ReLU(), nn.Linear(256, 10))
    ours = build(design)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(64, 256)

    def steps(net: nn.Module, k: int = 20) -> Callable[[], None]:
        def run() -> None:
            for _ in range(k):
                net.zero_grad(set_to_none=True)
                net(x).square().mean().backward()

        return run

    k = 5 if quick else 20
    c = compare(steps(ours, k), steps(theirs, k), repeats=3 if quick else 41, warmup=2)
    yield Row.of("forward + backward", f"tied MLP 256 wide, batch 64 ({k} steps per sample)", c, 1.02)
    yield from _step_resnet18(quick)


def _step_resnet18(quick: bool) -> Iterator[Row]:
    """A training step of examples/resnet18.json (its forward is the flow walker) against d2l's ResNet18().net."""
    from .resnet import ResNet18

    design = load_example("resnet18")
    batch = 2 if quick else 8
    x = torch.randn(batch, *design.input_shape[1:])
    theirs = ResNet18().net
    with torch.no_grad():
        theirs(x)
    ours = build(design)
    ours.load_state_dict(theirs.state_dict())

    def steps(net: nn.Module, k: int) -> Callable[[], None]:
        def run() -> None:
            for _ in range(k):
                net.zero_grad(set_to_none=True)
                net(x).square().mean().backward()

        return run

    k = 1 if quick else 3
    c = compare(steps(ours, k), steps(theirs, k), repeats=2 if quick else 21, warmup=1)
    yield Row.of("forward + backward", f"ResNet-18, batch {batch} of (1, 96, 96) ({k} steps per sample)", c, 1.02)


# -- 3. inspection -------------------------------------------------------------------------------------------


def bench_inspect(quick: bool) -> Iterator[Row]:
    try:
        import torchinfo
        import torchview
    except ImportError:
        yield Row("inspection", "summary + graph vs torchinfo + torchview", "", "not installed", None, "≤ 0.1", None)
        return
    n = 100 if quick else 1000
    design = mixed_design(n)
    net = build(design)  # also records the design's dry run, which graph() reuses

    def ours() -> None:  # a view of a network seen before (a rerun): nothing changed, so nothing is made again
        summary(net)
        _ = graph(design).source  # the DOT text, as a renderer would ask for it

    def theirs() -> None:
        torchinfo.summary(net, input_size=(8, WIDTH), verbose=0)
        _ = torchview.draw_graph(net, input_size=(8, WIDTH)).visual_graph.source

    c = compare(ours, theirs, repeats=3 if quick else 9)
    yield Row.of("inspection", f"{n} layers: summary + graph vs torchinfo.summary + torchview.draw_graph", c, 0.1)
    yield from _inspect_examples(quick, torchinfo, torchview)

    def cold() -> None:  # a design seen for the first time, nothing remembered: graph() runs the dry run itself
        forget_everything()
        summary(net)
        _ = graph(design).source

    c = compare(cold, theirs, repeats=3 if quick else 9)
    yield Row.of("inspection", f"{n} layers, first view of a design (includes the meta dry run)", c, 1.0)
    # The same first view when no two layers are alike: every layer runs on meta (torch's Python meta kernels).
    distinct = distinct_design(n)
    distinct_net = build(distinct)

    def cold_distinct() -> None:
        forget_everything()
        summary(distinct_net)
        _ = graph(distinct).source

    def theirs_distinct() -> None:
        torchinfo.summary(distinct_net, input_size=(8, WIDTH), verbose=0)
        _ = torchview.draw_graph(distinct_net, input_size=(8, WIDTH)).visual_graph.source

    c = compare(cold_distinct, theirs_distinct, repeats=3 if quick else 5)
    yield Row(
        "inspection",
        f"{n} layers, no two alike: first view (every layer dry-run on meta)",
        _ms(c.ours),
        _ms(c.theirs),
        c.ratio,
        "(info)",
        None,
    )


def forget_everything() -> None:
    """Nothing remembered: no dry run or node answer (builder.build), no summary frame, no drawing."""
    clear_caches()
    forget_summaries()
    forget_drawings()


# The chapter-7/8 networks (LeNet, AlexNet, VGG, NiN, ResNet, GoogLeNet, DenseNet) among the examples: small networks
# count too, and so do the 224 x 224 ones (AlexNet 46.8 M parameters, VGG-11 128.8 M).
CHAPTER_EXAMPLES = ("lenet", "alexnet", "vgg_block", "vgg11", "nin", "resnet18", "inception", "densenet_block")


def _inspect_examples(quick: bool, torchinfo: Any, torchview: Any) -> Iterator[Row]:
    names = [n for n in CHAPTER_EXAMPLES if n in example_names()]
    for name in names[:1] if quick else names:
        design = load_example(name)
        net = build(design).eval()
        shape, dtypes = design.input_shape, [example_input(design).dtype]

        def ours(design: Design = design, net: nn.Module = net) -> None:
            summary(net)
            _ = graph(design).source

        def theirs(net: nn.Module = net, shape: tuple[int, ...] = shape, dtypes: list = dtypes) -> None:
            torchinfo.summary(net, input_size=shape, dtypes=dtypes, verbose=0)
            _ = torchview.draw_graph(net, input_size=shape, dtypes=dtypes).visual_graph.source

        c = compare(ours, theirs, repeats=3 if quick else 9)
        yield Row.of("inspection", f"{name}: summary + graph vs torchinfo.summary + torchview.draw_graph", c, 0.1)


# -- 4. .params save and load --------------------------------------------------------------------------------


def bench_params(quick: bool) -> Iterator[Row]:
    previous = os.environ.get("BLOCKWORK_MAX_UPLOAD_MB")
    os.environ["BLOCKWORK_MAX_UPLOAD_MB"] = "2000"  # 100 M floats are 400 MB
    try:
        yield from _bench_params(quick)
    finally:
        if previous is None:
            del os.environ["BLOCKWORK_MAX_UPLOAD_MB"]
        else:
            os.environ["BLOCKWORK_MAX_UPLOAD_MB"] = previous


def _bench_params(quick: bool) -> Iterator[Row]:
    sizes = {"1 M": 1000} if quick else {"1 M": 1000, "10 M": 3162, "100 M": 10_000}
    for label, width in sizes.items():
        net = nn.Sequential(nn.Linear(width, width))
        data = save_params(net)
        # 1 M parameters load in about a millisecond: more samples, so the median is not a few noisy ones
        repeats = 3 if quick else {1000: 101, 3162: 15}.get(width, 5)

        def torch_save(net: nn.Module = net) -> None:
            torch.save(net.state_dict(), io.BytesIO())

        def torch_load(net: nn.Module = net, data: bytes = data) -> None:
            net.load_state_dict(torch.load(io.BytesIO(data), weights_only=True, map_location="cpu"))

        c = compare(lambda net=net: save_params(net), torch_save, repeats)
        yield Row.of(".params save", f"{label} parameters vs torch.save(state_dict)", c, 1.1)
        c = compare(lambda net=net, data=data: load_params(net, data), torch_load, repeats)
        yield Row.of(".params load", f"{label} parameters vs torch.load + load_state_dict (checks included)", c, 1.1)


# -- 4b. .safetensors save and load -------------------------------------------------------------------------


def bench_safetensors(quick: bool) -> Iterator[Row]:
    previous = os.environ.get("BLOCKWORK_MAX_UPLOAD_MB")
    os.environ["BLOCKWORK_MAX_UPLOAD_MB"] = "2000"  # 100 M floats are 400 MB
    try:
        yield from _bench_safetensors(quick)
    finally:
        if previous is None:
            del os.environ["BLOCKWORK_MAX_UPLOAD_MB"]
        else:
            os.environ["BLOCKWORK_MAX_UPLOAD_MB"] = previous


def _bench_safetensors(quick: bool) -> Iterator[Row]:
    """save_safetensors / load_params (header checks, keys, shapes, ties, dtypes) against safetensors.torch's
    save / load + load_state_dict, on bytes both ways (no disk)."""
    import safetensors.torch

    sizes = {"1 M": 1000} if quick else {"10 M": 3162, "100 M": 10_000}
    for label, width in sizes.items():
        net = nn.Sequential(nn.Linear(width, width))
        data = save_safetensors(net)
        repeats = 3 if quick else (15 if width < 10_000 else 5)

        def theirs_save(net: nn.Module = net) -> None:
            safetensors.torch.save(net.state_dict())

        def theirs_load(net: nn.Module = net, data: bytes = data) -> None:
            net.load_state_dict(safetensors.torch.load(data))

        c = compare(lambda net=net: save_safetensors(net), theirs_save, repeats)
        yield Row.of(".safetensors save", f"{label} parameters vs safetensors.torch.save(state_dict)", c, 1.1)
        c = compare(lambda net=net, data=data: load_params(net, data), theirs_load, repeats)
        yield Row.of(
            ".safetensors load",
            f"{label} parameters vs safetensors.torch.load + load_state_dict (checks included)",
            c,
            1.1,
        )


# -- 5. UI reruns --------------------------------------------------------------------------------------------


def bench_ui(quick: bool) -> Iterator[Row]:
    import logging

    # AppTest runs pages outside `streamlit run`, and streamlit warns "missing ScriptRunContext! This warning can
    # be ignored when running in bare mode" hundreds of times. Streamlit gives each of its loggers its own level
    # (so the "streamlit" logger's level does not reach them): the warning is filtered on the logger that writes
    # it, for this case only.
    chatter = logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context")

    def bare_mode_warning(record: logging.LogRecord) -> bool:
        return "missing ScriptRunContext" not in record.getMessage()

    chatter.addFilter(bare_mode_warning)
    try:
        yield from _bench_ui(quick)
    finally:
        chatter.removeFilter(bare_mode_warning)


def _bench_ui(quick: bool) -> Iterator[Row]:
    from streamlit.testing.v1 import AppTest

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    small, large = 5, (100 if quick else 500)

    def rerun_after_edit(n: int, page: str) -> Callable[[], None]:
        at = AppTest.from_file(os.path.join(root, "app.py"), default_timeout=300)
        at.run()
        base = mixed_design(n).to_dict()
        at.session_state["design"] = Design.from_dict(base)
        at.switch_page(f"pages/{page}.py").run()
        flip = [0]

        def run() -> None:  # one edit: the first layer's bias is switched off or on, then the page reruns
            flip[0] ^= 1  # (the design still builds: a new width would not fit the shared Linear(32, 32))
            first = {"type": "LazyLinear", "out_features": WIDTH, "bias": not flip[0]}
            edited = {**base, "layers": [first, *base["layers"][1:]]}
            at.session_state["design"] = Design.from_dict(edited)
            at.run()
            assert not at.exception, at.exception

        return run

    pages = ["inspect"] + (["design"] if os.path.exists(os.path.join(root, "pages", "design.py")) else [])
    for page in pages:
        c = compare(rerun_after_edit(large, page), rerun_after_edit(small, page), repeats=3 if quick else 7)
        yield Row.of("UI rerun", f"{page} page after one edit: {large} vs {small} layers", c, 2.0)


# -- 6b. importing a live module ------------------------------------------------------------------------------


def bench_import(quick: bool) -> Iterator[Row]:
    """from_module reads ResNet-18 (fx per block, nothing run) in the time torchinfo.summary needs to show it."""
    from builder import from_module
    from builder.importing.tree import flows_supported

    from .resnet import resnet18

    case = "ResNet-18 (1, 1, 96, 96): from_module vs torchinfo.summary on the same module"
    if not flows_supported():
        yield Row("import", case, "needs flow blocks", "", None, "≤ 1.0", None)
        return
    x = torch.rand(1, 1, 96, 96)
    net = resnet18(x)
    try:
        import torchinfo
    except ImportError:
        _ = from_module(net, x)
        yield Row("import", case, "", "not installed", None, "≤ 1.0", None)
        return
    c = compare(lambda: from_module(net, x), lambda: torchinfo.summary(net, input_data=x, verbose=0), 3 if quick else 9)
    yield Row.of("import", case, c, 1.0)


# -- 7. refusing a huge design -------------------------------------------------------------------------------


def bench_refuse(quick: bool) -> Iterator[Row]:
    design = Design.from_dict(
        {
            "format": 1,
            "input": {"shape": [1, 100_000]},
            "layers": [{"type": "Linear", "in_features": 100_000, "out_features": 100_000}],
        }
    )  # 10^10 parameters
    times, peaks = [], []
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(3 if quick else 15):
        tracemalloc.start()
        start = time.perf_counter()
        try:
            build(design)
        except DesignError:
            pass
        else:
            raise AssertionError("a 10^10-parameter design was built")
        times.append(time.perf_counter() - start)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    rss_growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024  # MiB
    t = sorted(times)[len(times) // 2]
    peak = max(peaks) / 2**20
    yield Row("refusal", "10^10-parameter design: median time", _ms(t), "", None, "< 50 ms", t < 0.05)
    yield Row(
        "refusal",
        "10^10-parameter design: peak memory (Python heap; process peak RSS growth)",
        f"{peak:.2f} MiB; {rss_growth:.1f} MiB",
        "",
        None,
        "< 10 MB",
        peak < 10 and rss_growth < 10,
    )


def bench_train(quick: bool) -> Iterator[Row]:
    from .bench_training import bench_training  # training's own module (its hand-written loop lives there)

    yield from bench_training(quick)


def bench_classroom(quick: bool) -> Iterator[Row]:
    from .bench_classroom import bench_classroom as run  # starts a server and browsers: imported on use

    yield from run(quick)  # type: ignore[misc]


def bench_design_browser(quick: bool) -> Iterator[Row]:
    from .bench_design_browser import bench_design_browser as run  # starts a server and a browser: imported on use

    yield from run(quick)  # type: ignore[misc]


CASES: dict[str, Callable[[bool], Iterator[Row]]] = {
    "build": bench_build,
    "step": bench_train_step,
    "inspect": bench_inspect,
    "params": bench_params,
    "safetensors": bench_safetensors,
    "ui": bench_ui,
    "refuse": bench_refuse,
    "import": bench_import,
    "train": bench_train,
    "classroom": bench_classroom,
    "design_browser": bench_design_browser,
}
