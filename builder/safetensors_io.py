"""Weights as `.safetensors` files: the format the Hugging Face ecosystem loads without unpickling anything.

Layout of a file (https://github.com/huggingface/safetensors): 8 bytes, the header's length N (unsigned,
little-endian); N bytes of JSON, `{"<key>": {"dtype": "F32", "shape": [8, 4], "data_offsets": [begin, end]},
..., "__metadata__": {"<text>": "<text>"}}`; then the raw little-endian data the offsets point into.

Tied weights. `safetensors.torch.save_file` refuses tensors that share memory, and a shared layer's positions
are one tensor. Two conventions exist, and Blockwork reads both:

- **every key its own copy** (what `save_safetensors` writes): each `state_dict` key holds its own copy of
  the values, so `model.load_state_dict(safetensors.torch.load_file(path))` works strictly in hand-written
  PyTorch, and the tie lives in the module (the same `nn.Linear` at two positions), as in the chapter. The tie
  is also recorded in the metadata, under `"blockwork.tied"`: a JSON list of groups of keys that are one
  tensor, e.g. `[["2.weight", "4.weight"], ["2.bias", "4.bias"]]`.
- **one key plus an alias** (`safetensors.torch.save_model`): only the first position's tensors are stored and
  the metadata maps each other position to it (`{"4.weight": "2.weight"}`). Reading fills each alias from its
  key, so the result is the full `state_dict` again.

Reading is defensive, as for `.params`: the header is parsed and checked here (its length, JSON, every
entry's dtype, shape and byte range) before safetensors reads a tensor, so a corrupt or oversized header, an
unknown dtype or a shape declaring more data than the file holds is refused by name, with nothing allocated
beyond the file itself.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any

import torch
from torch import nn
from torch.nn.parameter import is_lazy

from .errors import ParamsError

TIED_KEY = "blockwork.tied"  # metadata entry: JSON list of groups of keys holding one (tied) tensor
MAX_HEADER_BYTES = 100 * 2**20  # safetensors' own limit on the JSON header
MAX_DIMS = 32  # more dimensions than any weight has (torch itself allows 64)
# The dtypes a weights file holds, as safetensors names them. Others (float8, unsigned 16–64 bit, complex) are
# refused by name: Blockwork's networks keep none of them.
DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
_ITEMSIZE = {name: torch.empty(0, dtype=dtype).element_size() for name, dtype in DTYPES.items()}


def safetensors_bytes(net: nn.Module) -> bytes:
    """The `.safetensors` file of `net.state_dict()`: every key its own copy, ties recorded in the metadata.

    Tensors are written from wherever they live (safetensors copies GPU tensors to the CPU as it writes); only a
    tied position's second and later keys are cloned, so saving costs what `safetensors.torch.save` does.
    """
    from safetensors.torch import save

    if not isinstance(net, nn.Module):
        raise TypeError(f"save_safetensors expects a torch.nn.Module, got {type(net).__name__}")
    own = net.state_dict(keep_vars=True)  # keep_vars: a tied position is the very same Parameter object
    lazy = [k for k, t in own.items() if is_lazy(t)]
    if lazy:
        raise ParamsError(
            f"the network still has uninitialized lazy tensors ({', '.join(lazy[:3])}); run a forward pass "
            f"(or builder.build) first so their shapes are known"
        )
    groups: dict[int, list[str]] = {}
    for key, tensor in own.items():
        groups.setdefault(id(tensor), []).append(key)
    tensors: dict[str, torch.Tensor] = {}
    storages: set[tuple[str, int]] = set()  # memory already written: safetensors refuses any overlap
    for key, tensor in own.items():
        t = tensor.detach()
        if t.layout != torch.strided or t.dtype not in DTYPES.values():
            raise ParamsError(
                f"{key}: a {t.layout} tensor of {str(t.dtype).removeprefix('torch.')} cannot be written to "
                f".safetensors by Blockwork; only dense tensors of {', '.join(DTYPES)}"
            )
        if t.numel():
            where = (t.device.type, t.untyped_storage().data_ptr())
            if where in storages:
                t = t.clone()  # a tied position (or a view of another tensor): its own copy
            elif not t.is_contiguous():
                t = t.contiguous()
            else:
                storages.add(where)
        tensors[key] = t
    metadata = {"format": "pt"}  # transformers and safetensors' tools expect it
    tied = [keys for keys in groups.values() if len(keys) > 1]
    if tied:
        metadata[TIED_KEY] = json.dumps(tied)
    return save(tensors, metadata=metadata)


def is_safetensors(data: bytes) -> bool:
    """Whether `data` starts as a safetensors file does: an 8-byte length, then a JSON object."""
    return len(data) >= 10 and data[8:9] == b"{"


def read_safetensors(data: bytes) -> dict[str, torch.Tensor]:
    """The tensors of a `.safetensors` file as a state_dict of CPU tensors, save_model's aliases filled in.

    ParamsError (naming the key at fault) for a truncated or corrupt file, a header that is not the JSON the
    format prescribes, an unknown dtype, or a shape whose bytes the file does not hold.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load

    header, metadata = read_header(data)
    try:
        tensors = load(data)
    except (SafetensorError, ValueError, RuntimeError) as e:  # what our checks let through, safetensors refuses
        raise ParamsError(f"the file is not a readable .safetensors file: {_first_line(e)}") from None
    if set(tensors) != set(header):  # cannot happen for a file our checks passed; never trust it silently
        raise ParamsError("the file is not a readable .safetensors file: its tensors differ from its header")
    for alias, key in metadata.items():  # save_model: {"4.weight": "2.weight"} when 4.weight is 2.weight
        if alias not in tensors and key in tensors:
            tensors[alias] = tensors[key]
    return tensors


def recorded_ties(data: bytes) -> list[list[str]]:
    """The groups of keys a `.safetensors` file says are one tensor, from either convention (see above)."""
    header, metadata = read_header(data)
    groups: list[list[str]] = []
    recorded = metadata.get(TIED_KEY)
    if recorded is not None:
        try:
            groups = [list(map(str, g)) for g in json.loads(recorded) if isinstance(g, list)]
        except (ValueError, TypeError):
            raise ParamsError(f"the file's metadata {TIED_KEY!r} is not a JSON list of key groups") from None
    aliases: dict[str, list[str]] = {}
    for alias, key in metadata.items():
        if alias not in header and key in header:
            aliases.setdefault(key, [key]).append(alias)
    return groups + [[key, *sorted(rest)] for key, (_, *rest) in sorted(aliases.items())]


def read_header(data: bytes) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Parse and check a safetensors header: ({key: {"dtype", "shape", "data_offsets"}}, metadata).

    Checks, before any tensor is read: the declared length fits the file and the format's limit; the header is
    a UTF-8 JSON object; each entry names a known dtype, a shape of at most MAX_DIMS whole numbers and a byte
    range inside the data whose length is exactly shape × dtype size; metadata is text to text.
    """
    if len(data) < 8:
        raise ParamsError(f"the file is not a readable .safetensors file: {len(data)} bytes, too short for a header")
    (n,) = struct.unpack("<Q", data[:8])
    if n > MAX_HEADER_BYTES:
        raise ParamsError(
            f"the file's safetensors header declares {n:,} bytes, over the format's limit of "
            f"{MAX_HEADER_BYTES:,}; refused (corrupt, or not a .safetensors file)"
        )
    if n > len(data) - 8:
        raise ParamsError(
            f"the file's safetensors header declares {n:,} bytes but only {len(data) - 8:,} follow; "
            f"the file is truncated or not a .safetensors file"
        )
    try:
        header = json.loads(data[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ParamsError(f"the file's safetensors header is not valid JSON: {_first_line(e)}") from None
    if not isinstance(header, dict):
        raise ParamsError(f"the file's safetensors header is a JSON {type(header).__name__}, not an object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ParamsError("the file's safetensors __metadata__ must map text to text")
    available = len(data) - 8 - n
    for key, entry in header.items():
        _check_entry(key, entry, available)
    return header, metadata


def _check_entry(key: str, entry: Any, available: int) -> None:
    name = _short(key)
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise ParamsError(f"{name}: the header entry must hold exactly dtype, shape and data_offsets")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if dtype not in DTYPES:
        raise ParamsError(
            f"{name}: dtype {_short(str(dtype))} is not one Blockwork reads from .safetensors ({', '.join(DTYPES)})"
        )
    whole = isinstance(shape, list) and all(isinstance(d, int) and not isinstance(d, bool) for d in shape)
    if not whole or len(shape) > MAX_DIMS or any(d < 0 for d in shape):
        raise ParamsError(f"{name}: shape {_short(json.dumps(shape))} is not a list of at most {MAX_DIMS} sizes ≥ 0")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
        or not 0 <= offsets[0] <= offsets[1] <= available
    ):
        raise ParamsError(
            f"{name}: data_offsets {_short(json.dumps(offsets))} are not a byte range inside the file's "
            f"{available:,} bytes of data (a truncated or corrupt file)"
        )
    needed = math.prod(shape) * _ITEMSIZE[dtype]  # Python ints: a bomb of sizes cannot overflow
    if needed != offsets[1] - offsets[0]:
        raise ParamsError(
            f"{name}: shape {tuple(shape)} of {dtype} needs {needed:,} bytes, but the file gives it "
            f"{offsets[1] - offsets[0]:,}; refused before reading"
        )


def _short(text: str, n: int = 80) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    first = text.splitlines()[0] if text else type(e).__name__
    return _short(first, 160)
