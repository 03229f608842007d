"""A training bundle: the session's network, data and settings as a script that trains anywhere with torchrun.

    zip_bytes = training_bundle(design, make_dataset("moons"), TrainConfig(epochs=25))

The in-app trainer runs in one process of a shared server. The bundle takes the same training elsewhere, on as
many processes, GPUs or machines as there are, with PyTorch's own engine: DistributedDataParallel (DDP) launched
by `torchrun`. Nothing is invented here; the zip holds plain PyTorch:

    <name>_train/model.py      the design as plain PyTorch, `make_model()` (builder.to_code, as exported today)
    <name>_train/train.py      DDP + DistributedSampler, gloo on CPU / nccl on GPUs, the session's TrainConfig,
                               data set and loss; rank 0 writes checkpoint.pt each epoch and trained.params at
                               the end; `--resume` goes on from the checkpoint
    <name>_train/data.py       `load_data()`: a built-in set regenerated from its seed (the generator's own source,
                               copied), or an uploaded CSV read from data.csv, or other tensors from data.pt
    <name>_train/<name>.json   the Blockwork design
    <name>_train/README.md     `torchrun --standalone --nproc_per_node=N train.py`, the multi-node form, and how
                               trained.params goes back into Blockwork (it is a state_dict of the design)

The global batch (`batch_size`) is split across the processes, so one step averages the gradients of the same
number of samples as in the app, and the validation split is the app's (the same seed, the same permutation).
"""

from __future__ import annotations

import csv
import inspect
import io
import types
import zipfile
from dataclasses import asdict, fields
from typing import Any

import torch

from . import data as data_mod
from .build import dry_run
from .codegen import file_stem, to_code
from .data import DataError, Dataset, check_input_shape, check_output_shape, make_dataset
from .design import Design
from .pysource import source_of
from .training import TrainConfig


def training_bundle(design: Design, data: Dataset, config: TrainConfig) -> bytes:
    """The zip (see the module docstring) that trains `design` on `data` with `config` under torchrun.

    Checks first that the data fits the design (DataError saying what to change, as the Train page does).
    """
    if not isinstance(design, Design):
        raise TypeError(f"training_bundle expects a Design, got {type(design).__name__}")
    if not isinstance(data, Dataset):
        raise TypeError(f"training_bundle expects a builder.Dataset, got {type(data).__name__}")
    if not isinstance(config, TrainConfig):
        raise TypeError(f"training_bundle expects a TrainConfig, got {type(config).__name__}")
    check_input_shape(design.input_shape, data, design.input_dtype)
    check_output_shape(dry_run(design).output_shape, data)
    stem = file_stem(design)
    folder = f"{stem}_train"
    source, files = _data_module(data)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr(f"{folder}/model.py", to_code(design))
        z.writestr(f"{folder}/train.py", _train_script(design, data, config))
        z.writestr(f"{folder}/data.py", source)
        for name, content in files.items():
            z.writestr(f"{folder}/{name}", content)
        z.writestr(f"{folder}/{stem}.json", design.to_json() + "\n")
        z.writestr(f"{folder}/README.md", _readme(design, data, config, stem, files))
    return buffer.getvalue()


# -- data.py -------------------------------------------------------------------------------------------------

_DATA_HEADER = '''"""The data set the Blockwork session trained on: `load_data()` returns (X, y).

X is (N, *sample_shape) float32; y is (N,) int64 class indices for classification, (N, k) float32 values for
regression.
"""

from __future__ import annotations
'''

# Blockwork caps the size of generated sets (builder.limits); the copied generators run without its caps.
_STAND_INS = {
    "limits": (
        "class _NoLimits:\n"
        '    """Blockwork\'s caps on generated data (builder.limits) do not apply here."""\n\n'
        "    def __getattr__(self, name):\n"
        '        return float("inf")\n\n\n'
        "def limits():\n"
        "    return _NoLimits()\n"
    )
}


def _data_module(data: Dataset) -> tuple[str, dict[str, bytes]]:
    """data.py's source and the files it reads."""
    recipe = data.info.get("recipe")
    if isinstance(recipe, dict) and _regenerates(data, recipe):
        return _builtin_source(recipe), {}
    if data.X.ndim == 2 and data.X.dtype == torch.float32 and not data.tokens:  # a table of features
        return _csv_source(data), {"data.csv": _csv_bytes(data)}
    buffer = io.BytesIO()
    torch.save({"X": data.X.contiguous(), "y": data.y.contiguous()}, buffer)
    return _tensor_source(data), {"data.pt": buffer.getvalue()}


def _regenerates(data: Dataset, recipe: dict[str, Any]) -> bool:
    """Whether the recipe makes exactly these tensors (a set changed after it was made is shipped instead)."""
    try:
        again = make_dataset(**recipe)
    except (DataError, KeyError, TypeError):
        return False
    return bool(torch.equal(again.X, data.X) and torch.equal(again.y, data.y))


def _builtin_source(recipe: dict[str, Any]) -> str:
    """data.py for a built-in set: its generator's source as Blockwork runs it, and what that source uses."""
    make = data_mod.BUILTINS[recipe["name"]].make
    parts = [
        _DATA_HEADER,
        "import math",
        "from dataclasses import dataclass, field",
        "from typing import Any",
        "",
        "import torch",
        "",
    ]
    for name, value in _used_by(make).items():
        if name in _STAND_INS:
            parts += ["", _STAND_INS[name]]
        elif inspect.isfunction(value) or inspect.isclass(value):
            parts += ["", source_of(value)]
        else:
            parts += [f"{name} = {value!r}", ""]
    parts += ["", source_of(make)]
    args = ", ".join(f"{k}={v!r}" for k, v in recipe.items() if k != "name")
    parts += [
        "",
        "def load_data():",
        f'    """{recipe["name"]}, made again from its seed: the very tensors the session trained on."""',
        f"    data = {make.__name__}({args})",
        "    return data.X, data.y",
        "",
    ]
    return _tidy("\n".join(parts))


def _used_by(fn: Any) -> dict[str, Any]:
    """The module-level names of builder.data that `fn` needs, followed through the functions and classes it
    uses, in the order found (definitions only need to exist by the time load_data runs)."""
    found: dict[str, Any] = {}

    def code_names(obj: Any) -> set[str]:
        functions = [obj] if inspect.isfunction(obj) else [f for f in vars(obj).values() if inspect.isfunction(f)]
        codes = [f.__code__ for f in functions]
        names: set[str] = set()
        while codes:
            code = codes.pop()
            names |= set(code.co_names)
            codes += [c for c in code.co_consts if isinstance(c, types.CodeType)]
        return names

    def visit(obj: Any) -> None:
        for name in sorted(code_names(obj)):
            if name in found or name not in vars(data_mod) or name == fn.__name__:
                continue
            value = vars(data_mod)[name]
            if isinstance(value, types.ModuleType):
                continue
            if name in _STAND_INS:
                found[name] = value
            elif (inspect.isfunction(value) or inspect.isclass(value)) and value.__module__ == data_mod.__name__:
                found[name] = value
                visit(value)
            elif isinstance(value, int | float | str | tuple | list | dict):
                found[name] = value

    visit(fn)
    if "Dataset" in found:  # its __post_init__ raises DataError
        found.setdefault("DataError", data_mod.DataError)
    return found


def _columns(data: Dataset) -> tuple[list[str], list[str]]:
    """Feature and target column names for data.csv: the set's own, else x1.. and the target's."""
    features = list(data.feature_names)
    if len(features) != data.X.shape[1] or len(set(features)) != len(features):
        features = [f"x{i + 1}" for i in range(data.X.shape[1])]
    if data.task == "classification":
        targets = [str(data.info.get("target", "label"))]
    else:
        k = data.y.shape[1] if data.y.ndim == 2 else 1
        targets = list(data.target_names) if len(data.target_names) == k else [f"y{i + 1}" for i in range(k)]
    targets = [t if t not in features else f"{t}_target" for t in targets]
    return features, targets


def _csv_bytes(data: Dataset) -> bytes:
    """The samples as CSV, one row each: float32 values written exactly (repr), class labels as names."""
    features, targets = _columns(data)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(features + targets)
    ys = data.y.reshape(len(data), -1).tolist()
    for x, y in zip(data.X.tolist(), ys, strict=True):
        label = [data.classes[int(y[0])]] if data.task == "classification" else [repr(v) for v in y]
        writer.writerow([repr(v) for v in x] + label)
    return text.getvalue().encode()


def _csv_source(data: Dataset) -> str:
    features, targets = _columns(data)
    scaled = ""
    if "mean" in data.info:
        scaled = (
            "\nThe features were standardized in Blockwork (mean 0, standard deviation 1) before training; data.csv "
            "holds them scaled.\nMEANS and STDS say how to scale new inputs the same way.\n"
        )
    lines = [
        _DATA_HEADER.replace('"""\n\nfrom', f'{scaled}"""\n\nfrom', 1),
        "import csv",
        "import os",
        "",
        "import torch",
        "",
        "HERE = os.path.dirname(os.path.abspath(__file__))",
        f"FEATURES = {tuple(features)!r}",
        f"TARGETS = {tuple(targets)!r}",
        f"TASK = {data.task!r}",
        f"CLASSES = {tuple(data.classes)!r}  # class index = position (Blockwork sorted the labels)",
    ]
    if "mean" in data.info:
        lines += [f"MEANS = {data.info['mean']!r}", f"STDS = {data.info['std']!r}"]
    lines += [
        "",
        "",
        "def load_data():",
        '    """data.csv (the data set of the session, as it trained on it) as tensors."""',
        '    with open(os.path.join(HERE, "data.csv"), newline="") as f:',
        "        rows = list(csv.DictReader(f))",
        "    X = torch.tensor([[float(row[c]) for c in FEATURES] for row in rows], dtype=torch.float32)",
        '    if TASK == "classification":',
        "        index = {label: i for i, label in enumerate(CLASSES)}",
        "        y = torch.tensor([index[row[TARGETS[0]]] for row in rows], dtype=torch.int64)",
        "    else:",
        "        y = torch.tensor([[float(row[t]) for t in TARGETS] for row in rows], dtype=torch.float32)",
        "    return X, y",
        "",
    ]
    return "\n".join(lines)


def _tensor_source(data: Dataset) -> str:
    return "\n".join(
        [
            _DATA_HEADER,
            "import os",
            "",
            "import torch",
            "",
            "HERE = os.path.dirname(os.path.abspath(__file__))",
            "",
            "",
            "def load_data():",
            f'    """{data.name}: its tensors, saved in data.pt (torch.save of a dict of two tensors)."""',
            '    tensors = torch.load(os.path.join(HERE, "data.pt"), weights_only=True)',
            '    return tensors["X"], tensors["y"]',
            "",
        ]
    )


# -- train.py ------------------------------------------------------------------------------------------------


def _train_script(design: Design, data: Dataset, config: TrainConfig) -> str:
    comments = {
        "optimizer": '  # "adam" or "sgd"',
        "batch_size": "  # samples per optimizer step, all processes together (each takes its share)",
        "momentum": "  # SGD only",
        "val_fraction": "  # held out before training (the app's split), never trained on",
        "seed": "  # the split, the shuffling, dropout, and the first weights of a design without its own seed",
    }
    settings = []
    for f in fields(config):
        value = getattr(config, f.name)
        settings.append(f"    {f.name}: {type(value).__name__} = {value!r}{comments.get(f.name, '')}")
    settings.append(f"    task: str = {data.task!r}  # cross-entropy on class scores, or mean squared error")
    return _TRAIN.replace("{NAME}", design.name).replace("{SETTINGS}", "\n".join(settings))


_TRAIN = '''"""Train {NAME} with PyTorch's DistributedDataParallel (DDP); exported by Blockwork.

    torchrun --standalone --nproc_per_node=2 train.py            # one machine, 2 processes
    torchrun --standalone --nproc_per_node=2 train.py --resume   # go on from checkpoint.pt
    python train.py                                              # one process, without torchrun

Each process trains on its share of the training split (DistributedSampler) and DDP averages the gradients, so
all processes hold the same weights. Processes talk over gloo on CPUs and nccl on GPUs (one GPU per process).
Rank 0 writes checkpoint.pt after every epoch and trained.params (the state_dict of model.make_model()) at
the end.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import asdict, dataclass, replace

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from data import load_data
from model import make_model


@dataclass(frozen=True)
class Config:
    """The training settings of the Blockwork session this was exported from."""

{SETTINGS}


def setup():
    """(rank, world size, device). Under torchrun, one process group: nccl with GPUs, gloo without."""
    if "WORLD_SIZE" not in os.environ:  # python train.py
        return 0, 1, torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo")
    if cuda:
        local = int(os.environ["LOCAL_RANK"])
        torch.cuda.set_device(local)
        return dist.get_rank(), dist.get_world_size(), torch.device("cuda", local)
    return dist.get_rank(), dist.get_world_size(), torch.device("cpu")


def split(n, config):
    """(training indices, validation indices): the permutation Blockwork's trainer draws from the seed."""
    n_val = round(n * config.val_fraction)
    if config.val_fraction > 0:
        n_val = max(n_val, 1)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(config.seed))
    return order[n_val:], order[:n_val]


def loss_of(out, y, config):
    if config.task == "classification":  # scores (B, C) and classes (B,), or per token (B, T, C) and (B, T)
        return nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
    return nn.functional.mse_loss(out.unsqueeze(1) if out.ndim == 1 else out, y)  # values (B, k)


def summed(values, device):
    """Element-wise sums over all processes (each process passes its own figures)."""
    t = torch.tensor(values, dtype=torch.float64, device=device)
    if dist.is_initialized():
        dist.all_reduce(t)
    return t.tolist()


def evaluate(model, X, y, config, device):
    """(mean loss, accuracy or None) of the model as it is now, in eval mode, on X, y."""
    if len(X) == 0:
        return None, None
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = torch.cat([model(X[i : i + 4096].to(device)) for i in range(0, len(X), 4096)])
        y = y.to(device)
        loss = float(loss_of(out, y, config))
        accuracy = float((out.argmax(-1) == y).float().mean()) if config.task == "classification" else None
    model.train(was_training)
    return loss, accuracy


def save(obj, path):
    """torch.save through a temporary file, so a crash never leaves half a file behind."""
    torch.save(obj, path + ".tmp")
    os.replace(path + ".tmp", path)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, help="train this many epochs in all (default: the session's)")
    parser.add_argument("--resume", action="store_true", help="go on from --checkpoint (weights, optimizer, epoch)")
    parser.add_argument("--checkpoint", default="checkpoint.pt", help="written by rank 0 after every epoch")
    parser.add_argument("--init", help="start from these weights (a .params file) instead of make_model()'s")
    parser.add_argument("--out", default="trained.params", help="the trained weights, written by rank 0")
    args = parser.parse_args()

    config = Config() if args.epochs is None else replace(Config(), epochs=args.epochs)
    rank, world, device = setup()
    torch.manual_seed(config.seed)  # the same first weights in every process (DDP also copies rank 0's)
    model = make_model().to(device)
    if args.init:
        model.load_state_dict(torch.load(args.init, weights_only=True, map_location=device))

    X, y = load_data()
    train, val = split(len(X), config)
    train_set = TensorDataset(X[train], y[train])
    sampler = DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True, seed=config.seed)
    loader = DataLoader(train_set, batch_size=max(1, config.batch_size // world), sampler=sampler)
    params = list(model.parameters())  # a shared (tied) layer's weights once
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    else:
        optimizer = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)

    start = 0
    if args.resume:
        if not os.path.exists(args.checkpoint):
            raise SystemExit(f"--resume: there is no checkpoint {args.checkpoint!r} yet")
        state = torch.load(args.checkpoint, weights_only=True, map_location=device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start = state["epoch"]
    ddp = model
    if world > 1:
        ddp = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if rank == 0:
        print(
            f"{world} process{'es' * (world > 1)} on {device.type}; {len(train)} training and {len(val)} "
            f"validation samples; batch {config.batch_size} ({max(1, config.batch_size // world)} per process)",
            flush=True,
        )

    for epoch in range(start, config.epochs):
        began = time.perf_counter()
        sampler.set_epoch(epoch)  # a new shuffle each epoch, the same in every run
        torch.manual_seed(config.seed + 1000 * (epoch + 1) + rank)  # dropout: the same after a resume
        ddp.train()
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        correct = torch.zeros((), dtype=torch.float64, device=device)
        seen = labels = 0
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            optimizer.zero_grad(set_to_none=True)
            out = ddp(xb)
            loss = loss_of(out, yb, config)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(xb)
            if config.task == "classification":
                correct += (out.detach().argmax(-1) == yb).sum()  # per token when y is (B, T)
            seen += len(xb)
            labels += yb.numel()
        loss_total, correct_total, n, labels = summed([float(loss_sum), float(correct), seen, labels], device)
        if rank == 0:  # its weights are every process's; its batch-norm statistics are the ones DDP shares
            val_loss, val_acc = evaluate(model, X[val], y[val], config, device)
            line = f"epoch {epoch + 1}/{config.epochs}  train loss {loss_total / n:.4f}"
            if config.task == "classification":
                line += f"  acc {correct_total / labels:.3f}"
            if val_loss is not None:
                line += f"  val loss {val_loss:.4f}" + (f"  val acc {val_acc:.3f}" if val_acc is not None else "")
            print(line + f"  ({time.perf_counter() - began:.2f} s)", flush=True)
            checkpoint = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch + 1}
            save({**checkpoint, "config": asdict(config)}, args.checkpoint)

    if rank == 0:
        save({k: v.cpu() for k, v in model.state_dict().items()}, args.out)
        print(f"saved {args.out}: load it with model.make_model().load_state_dict(torch.load(...))", flush=True)
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
'''


# -- README.md -----------------------------------------------------------------------------------------------


def _readme(design: Design, data: Dataset, config: TrainConfig, stem: str, files: dict[str, bytes]) -> str:
    settings = ", ".join(f"{k} {v}" for k, v in asdict(config).items())
    if not files:
        recipe = data.info["recipe"]
        source = f"regenerated by data.py from its seed ({', '.join(f'{k} {v}' for k, v in recipe.items())})"
    elif "data.csv" in files:
        source = "read from data.csv (the uploaded CSV's samples, as the session trained on them)"
    else:
        source = "read from data.pt"
    loss = "cross-entropy on class scores" if data.task == "classification" else "mean squared error"
    lines = [
        f"# Train {design.name} with torchrun",
        "",
        "Exported by Blockwork: plain PyTorch (torch only) that trains with DistributedDataParallel on as many",
        "processes, GPUs or machines as you have.",
        "",
        "| file | what |",
        "|---|---|",
        "| `model.py` | the network as plain PyTorch; `make_model()` builds it |",
        "| `train.py` | the training loop: DDP + DistributedSampler; gloo on CPUs, nccl on GPUs |",
        f"| `data.py` | `load_data()`: {data.name}, {source} |",
        *(f"| `{name}` | the data set's samples |" for name in files),
        f"| `{stem}.json` | the Blockwork design (open it in Blockwork) |",
        "",
        f"Settings (the session's): {settings}; loss: {loss}. `batch_size` is the global batch: with N",
        "processes each takes batch_size / N samples per step and DDP averages their gradients.",
        "",
        "## Run",
        "",
        "One machine, N processes (one per GPU, or a few on CPUs):",
        "",
        "    torchrun --standalone --nproc_per_node=N train.py",
        "",
        "Several machines: the same command on each (HOST:29400 is a machine all of them can reach):",
        "",
        "    torchrun --nnodes=2 --nproc_per_node=N --rdzv_id=blockwork --rdzv_backend=c10d \\",
        "        --rdzv_endpoint=HOST:29400 train.py",
        "",
        "Without torchrun, one process: `python train.py`.",
        "",
        "Rank 0 writes `checkpoint.pt` after every epoch. After an interruption, add `--resume` to go on from",
        "it (weights, optimizer state, epoch). `--epochs E` trains E epochs in all; `--init weights.params`",
        "starts from downloaded weights instead of `make_model()`'s.",
        "",
        "## Back into Blockwork",
        "",
        "At the end rank 0 writes `trained.params`, the `state_dict` of `make_model()`:",
        "",
        "    model = make_model()",
        '    model.load_state_dict(torch.load("trained.params", weights_only=True))',
        "",
        f"In Blockwork, open `{stem}.json` (or keep the session's design) and upload `trained.params` on the",
        "Weights page.",
        "",
    ]
    return "\n".join(lines)


def _tidy(text: str) -> str:
    while "\n\n\n\n" in text:
        text = text.replace("\n\n\n\n", "\n\n\n")
    return text
