"""A design guessed from a `.params` outline alone: one whose state_dict has exactly the file's keys and shapes.

What a file tells: the module tree (dotted keys), each layer's tensors (a 2-D `weight` and a `bias` of its
first size is a Linear, a 4-D `weight` a Conv2d, `running_mean`/`running_var` a BatchNorm, `weight_ih_l0` a
recurrent layer, …) and which layers are one object (ties). What it cannot tell: anything without weights —
activations, pooling, dropout, flatten — nor strides, padding, head counts or the order `forward` runs things
in. The guess fills those with the common choice (ReLU between layers, an adaptive pool and Flatten where
convolutions meet a Linear, stride 1 and "same"-like padding) and says so in its description, listing every
ambiguity it met. The guessed design is checked to give the file's keys and shapes before it is returned.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import design as design_module
from ..design import Design
from ..errors import DesignError
from ..registry import REGISTRY
from .flowgraph import tuple_outputs
from .outline import OutlineNode, ParamsOutline, TensorInfo
from .tree import flows_supported

_BATCH = 2  # example batch: batch norm in training mode needs more than one value per channel
_IMAGE = 32  # side of a guessed image input (convolutions keep it: padding k // 2)
_LENGTH = 8  # length of a guessed sequence input
_NORMS = ("BatchNorm", "LayerNorm")  # type name prefixes
_CONVS = ("Conv1d", "Conv2d", "Conv3d")
_RECURRENT = {1: "RNN", 3: "GRU", 4: "LSTM"}  # gates per hidden unit (weight_ih_l0 has gates × hidden rows)
_INSERTED = "__inserted__"  # marks filler the guess put between named children (not a place in the file)


@dataclass
class _Leaf:
    """A layer read from the file: its type and constructor arguments, and its input/output size."""

    type: str
    args: dict[str, Any]
    path: str
    takes: int | None  # features or channels of its input (None: any)
    gives: int | None  # of its output
    rank: str  # its output: "flat" (N, F), "seq" (N, L, F), "1d"/"2d"/"3d" (N, C, ...), "several" (N, A, B, ...)
    alternatives: list[str] = field(default_factory=list)  # what else the same tensors could be
    entry: dict[str, Any] = field(default_factory=dict)  # its node in the design being assembled


@dataclass(frozen=True)
class _Gap:
    """Places of a block the file has no weights for: `count` skipped Sequential positions (0: the place
    between two named children), before the layer `self.leaves[at]`."""

    block: str
    at: int
    count: int
    where: str


def guess_design(outline: ParamsOutline, name: str = "guessed") -> Design:
    """A design whose `state_dict` has exactly the file's keys and shapes, marked as a guess.

    Raises DesignError when some tensors fit no Blockwork layer type (the message names their keys).
    """
    if not isinstance(outline, ParamsOutline):
        raise TypeError(f"guess_design expects a ParamsOutline (from outline_params), got {type(outline).__name__}")
    if not outline.tensors:
        raise DesignError("the file holds no tensors, so there is nothing to guess a design from")
    return _Guesser(outline, name).design()


class _Guesser:
    def __init__(self, outline: ParamsOutline, name: str) -> None:
        self.outline = outline
        self.name = name
        self.notes: list[str] = []
        self.fillers: list[tuple[list[dict[str, Any]], str]] = []  # parameter-free layers assumed, and where
        self.dropped: set[int] = set()  # filler entries a flow replaced (their note goes too)
        self.shared_of: dict[str, str] = {}  # module path → shared definition name (for every place it sits)
        self.shared: dict[str, dict[str, Any]] = {}
        self.leaves: list[_Leaf] = []  # forward order (shared layers at each use)

    # -- the whole design --------------------------------------------------------------------------------

    def design(self) -> Design:
        root = self.outline.root
        if root.tensors:
            keys = ", ".join(t.key for t in root.tensors[:4])
            raise DesignError(
                f"the file's top module holds tensors itself ({keys}); a design's tensors belong to its layers, "
                f"so this file cannot be guessed as a stack of layers",
                root.tensors[0].key,
            )
        self.find_shared(root)
        entries = self.block(root)
        self.check_chain()
        layers = self.fill(entries)
        for definition in self.shared.values():
            if definition.get("type") == "Sequential":
                definition["layers"] = self.fill(definition["layers"])
        top: dict[str, Any] = {"type": "Sequential", "layers": layers}
        if flows_supported():
            arranger = _Arranger(self)
            for definition in self.shared.values():
                arranger.sizes(definition)
            arranger.sizes(top)
            arranger.finish()
        _strip_markers(top)
        for definition in self.shared.values():
            _strip_markers(definition)
        shape, dtype = self.input_shape()
        data: dict[str, Any] = {
            "format": design_module.FORMAT,
            "name": self.name,
            "description": self.description(),
            "input": {"shape": list(shape)} | ({"dtype": dtype} if dtype != "float32" else {}),
            "layers": top["layers"],
        }
        if top.get("flow") is not None:
            data["flow"] = top["flow"]
        if self.shared:
            data["shared"] = self.shared
        design = Design.from_dict(data)
        self.verify(design)
        return design

    def description(self) -> str:
        text = (
            "A guess from a weights file alone: the keys, shapes and ties are the file's, but activations, "
            "pooling, dropout and flatten leave no weights, so they cannot be known, nor can strides, padding "
            "or the order forward runs the layers in."
        )
        fillers = [text for entries, text in self.fillers if not any(id(e) in self.dropped for e in entries)]
        if fillers:
            text += " Assumed where the file has no weights: " + "; ".join(fillers) + "."
        if self.notes:
            text += " Ambiguous: " + " ".join(self.notes)
        return text if len(text) <= 5_000 else text[:4_997] + "..."

    def input_shape(self) -> tuple[tuple[int, ...], str]:
        """An input the first layer takes: (2, features), (2, C, 32, 32), token ids (2, 8) for an Embedding."""
        first = self.leaves[0] if self.leaves else None
        if first is None:
            return (_BATCH, 1), "float32"
        if first.type == "Embedding":
            return (_BATCH, _LENGTH), "int64"
        if first.type in ("Conv1d", "BatchNorm1d") and first.rank == "1d":
            return (_BATCH, first.takes or 1, 4 * _IMAGE), "float32"
        if first.type == "Conv2d" or first.type == "BatchNorm2d":
            return (_BATCH, first.takes or 1, _IMAGE, _IMAGE), "float32"
        if first.type == "Conv3d" or first.type == "BatchNorm3d":
            return (_BATCH, first.takes or 1, _LENGTH, _LENGTH, _LENGTH), "float32"
        if first.type == "LayerNorm":
            return (_BATCH, *first.args["normalized_shape"]), "float32"
        if first.rank == "seq":
            return (_BATCH, _LENGTH, first.takes or 1), "float32"
        return (_BATCH, first.takes or 1), "float32"

    def verify(self, design: Design) -> None:
        """The guess must have the file's keys and shapes; anything else is a fault of this module."""
        from ..lazy import instantiate

        want = {t.key: t.shape for t in self.outline.tensors}
        got = {k: tuple(t.shape) for k, t in instantiate(design).state_dict().items()}
        if got != want:
            missing = [k for k in want if k not in got]
            extra = [k for k in got if k not in want]
            wrong = [k for k in want if k in got and got[k] != want[k]]
            raise DesignError(
                "could not guess a design with the file's keys: "
                + "; ".join(
                    f"{what} {', '.join(keys[:4])}"
                    for what, keys in (("missing", missing), ("unexpected", extra), ("wrong shape", wrong))
                    if keys
                )
            )

    # -- sharing ---------------------------------------------------------------------------------------

    def find_shared(self, root: OutlineNode) -> None:
        """Modules whose every tensor is tied to the same-named tensor of an earlier module are that module
        (torch.save keeps a shared layer's tensors as one): the earlier one becomes a shared definition."""
        seen: dict[tuple[tuple[str, int], ...], OutlineNode] = {}
        inside_shared: set[str] = set()
        for node in root.walk():
            if not node.path or any(node.path.startswith(p + ".") for p in inside_shared):
                continue
            signature = self.signature(node)
            if signature is None:
                continue
            first = seen.setdefault(signature, node)
            if first is node:
                continue
            name = self.shared_of.get(first.path)
            if name is None:
                name = _identifier(first.path)
                self.shared_of[first.path] = name
                inside_shared.add(first.path)
            self.shared_of[node.path] = name
            inside_shared.add(node.path)
        for keys in self.outline.ties:
            placed = [k for k in keys if any(k.startswith(p + ".") for p in self.shared_of)]
            if len(placed) < len(keys):
                self.notes.append(
                    f"{', '.join(keys)} are one tensor in the file, but not of one shared layer (tied weights "
                    f"of different layers); a design shares whole layers, so the guess keeps them apart."
                )
        names = set(self.shared_of.values())
        if len(names) == 1:  # one shared layer: call it what the chapter calls it
            only = names.pop()
            self.shared_of = {p: "shared" for p, n in self.shared_of.items() if n == only}

    def signature(self, node: OutlineNode) -> tuple[tuple[str, int], ...] | None:
        """(relative key, tie group) of every tensor below `node`, or None when one of them is not tied."""
        out = []
        by_key = self.outline.by_key()
        for key in node.tensor_keys():
            tie = by_key[key].tie
            if tie is None:
                return None
            out.append((key[len(node.path) + 1 :], tie))
        return tuple(out) or None

    # -- blocks and layers -----------------------------------------------------------------------------

    def block(self, node: OutlineNode) -> list[Any]:
        """The children of a module without tensors of its own. Positions the file skips (Sequential indices
        without weights) and the places between named children become _Gap markers, filled by `fill` once
        the chain is settled."""
        slots: list[OutlineNode | None] = []
        names: list[str | None] = []
        for child in node.children:
            if child.name.isdigit() and int(child.name) >= len(slots):
                missing = int(child.name) - len(slots)
                slots += [None] * missing
                names += [None] * missing
                names.append(None)
            else:
                names.append(child.name)
            slots.append(child)
        numbered = any(c.name.isdigit() for c in node.children)
        out: list[Any] = []
        i = 0
        while i < len(slots):
            slot = slots[i]
            if slot is not None:
                start = len(self.leaves)
                if out and not numbered and isinstance(out[-1], dict):
                    where = f"{node.path}." if node.path else ""
                    out.append(_Gap(node.path, start, 0, f"between {where}{names[i - 1]} and {where}{names[i]}"))
                out.append(self.child(slot, names[i]))
                i += 1
                continue
            j = i
            while j < len(slots) and slots[j] is None:
                j += 1
            where = f"{node.path}." if node.path else ""
            out.append(_Gap(node.path, len(self.leaves), j - i, f"at {where}{i}" + (f"–{j - 1}" if j - i > 1 else "")))
            i = j
        return out

    def fill(self, entries: list[Any]) -> list[dict[str, Any]]:
        """Replace the gap markers by the parameter-free layers that most likely sit there (recursively)."""
        out: list[dict[str, Any]] = []
        for entry in entries:
            if isinstance(entry, _Gap):
                out += self.filler(entry)
                continue
            if entry.get("type") == "Sequential":
                entry["layers"] = self.fill(entry["layers"])
            out.append(entry)
        return out

    def filler(self, gap: _Gap) -> list[dict[str, Any]]:
        before = self.leaves[gap.at - 1] if gap.at > 0 else None
        after = self.leaves[gap.at] if gap.at < len(self.leaves) else None
        needed = self.between(before, after)
        if gap.count == 0:  # between named children: only what forward surely needs
            inserted = [{**e, _INSERTED: True} for e in needed]  # no place of the file: a flow may drop them
            if inserted:
                self.fillers.append((inserted, f"{_briefs(needed)} {gap.where}"))
            return inserted
        needed = needed or [{"type": "Identity"}]
        if len(needed) < gap.count:
            needed += [{"type": "Identity"}] * (gap.count - len(needed))
        elif len(needed) > gap.count:
            needed = needed[: gap.count - 1] + [{"type": "Sequential", "layers": needed[gap.count - 1 :]}]
        self.fillers.append((needed, f"{_briefs(needed)} {gap.where}"))
        return needed

    def child(self, node: OutlineNode, name: str | None) -> dict[str, Any]:
        named = {"name": name} if name is not None else {}
        shared = self.shared_of.get(node.path)
        if shared is not None:
            if shared not in self.shared:
                self.shared[shared] = self.module(node)
            else:  # a later use: its layers run again here (same sizes as the first)
                self.module(node)
            return {"shared": shared, **named}
        entry = self.module(node)  # the leaf's own dict: check_chain may still retype it
        entry.update(named)
        return entry

    def module(self, node: OutlineNode) -> dict[str, Any]:
        leaf = self.leaf(node)
        if leaf is not None:
            self.leaves.append(leaf)
            leaf.entry.update(type=leaf.type, **leaf.args)
            return leaf.entry
        if node.tensors:
            keys = ", ".join(f"{t.name} {t.shape}" for t in node.tensors[:5])
            raise DesignError(
                f"{node.path}: its tensors ({keys}) fit no Blockwork layer type; it may be a custom module, "
                f"which a design cannot hold",
                node.path,
            )
        return {"type": "Sequential", "layers": self.block(node)}

    def leaf(self, node: OutlineNode) -> _Leaf | None:
        """The registry layer these tensors are, or None when they are a block (children only)."""
        own = {t.name: t for t in node.tensors}
        kids = {c.name: c for c in node.children}
        if "weight_ih_l0" in own and not kids:
            return self.recurrent(node, own)
        if "in_proj_weight" in own and set(kids) == {"out_proj"}:
            return self.attention(node, own, kids["out_proj"])
        if not own and {"self_attn", "linear1", "linear2", "norm1", "norm2"} <= set(kids):
            spec = self.encoder_layer(node, kids)
            if spec is not None:
                d = spec["d_model"]
                self.notes.append(
                    f"{node.path}: nhead=1, batch_first=True, post-norm and relu assumed (the weights are the same "
                    f"for any head count dividing {d}, either norm order and activation)."
                )
                return _Leaf("TransformerEncoderLayer", spec, node.path, d, d, "seq")
        if not own and set(kids) in ({"layers"}, {"layers", "norm"}):
            encoder = self.encoder(node, kids)
            if encoder is not None:
                return encoder
        if kids or not own:
            return None
        names = set(own)
        w, b = own.get("weight"), own.get("bias")
        if (
            {"running_mean", "running_var"}
            <= names
            <= {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}
        ):
            if (w is None) != (b is None):
                return None
            c = own["running_mean"].shape[0]
            args: dict[str, Any] = {"num_features": c}
            if w is None:
                args["affine"] = False
            return _Leaf("BatchNorm?", args, node.path, c, c, "same")
        if w is None or not names <= {"weight", "bias"}:
            return None
        if b is not None and b.shape == w.shape:
            return _Leaf("LayerNorm", {"normalized_shape": list(w.shape)}, node.path, w.shape[-1], w.shape[-1], "same")
        if b is None and len(w.shape) == 1:
            args = {"normalized_shape": list(w.shape), "bias": False}
            return _Leaf("LayerNorm", args, node.path, w.shape[-1], w.shape[-1], "same")
        if len(w.shape) == 2:
            return self.matrix(node, w, b)
        if 3 <= len(w.shape) <= 5 and (b is None or b.shape == (w.shape[0],)):
            n = len(w.shape) - 2
            kind = f"Conv{n}d"
            if kind not in REGISTRY:
                raise DesignError(f"{node.path}: a {n}-D convolution kernel {w.shape}; Blockwork has no {kind}")
            kernel = list(w.shape[2:])
            args = {
                "in_channels": w.shape[1],
                "out_channels": w.shape[0],
                "kernel_size": kernel[0] if len(set(kernel)) == 1 else kernel,
            }
            if any(k > 1 for k in kernel):
                pad = [k // 2 for k in kernel]
                args["padding"] = pad[0] if len(set(pad)) == 1 else pad
            if b is None:
                args["bias"] = False
            leaf = _Leaf(kind, args, node.path, w.shape[1], w.shape[0], f"{n}d")
            leaf.alternatives.append(f"a ConvTranspose{n}d (or a grouped convolution)")
            return leaf
        return None

    def matrix(self, node: OutlineNode, w: TensorInfo, b: TensorInfo | None) -> _Leaf | None:
        """A 2-D weight: nn.Linear (weight (out, in), bias (out,)), the chapter's MyLinear (weight (in, units),
        bias (units,)) or, without a bias, an nn.Embedding (weight (num_embeddings, embedding_dim)). Which one
        is settled in `check_chain`, which sees the neighbours."""
        rows, cols = w.shape
        if b is not None and b.shape == (rows,):
            leaf = _Leaf("Linear", {"in_features": cols, "out_features": rows}, node.path, cols, rows, "flat")
            if b.shape == (cols,):
                leaf.alternatives.append("MyLinear")
            return leaf
        if b is not None and b.shape == (cols,):
            return _Leaf("MyLinear", {"in_units": rows, "units": cols}, node.path, rows, cols, "flat")
        if b is not None:
            return None
        leaf = _Leaf(
            "Linear", {"in_features": cols, "out_features": rows, "bias": False}, node.path, cols, rows, "flat"
        )
        leaf.alternatives.append("Embedding")
        if "emb" in node.name.lower() or "embed" in node.path.lower():
            self.to_embedding(leaf)
        return leaf

    def recurrent(self, node: OutlineNode, own: Mapping[str, TensorInfo]) -> _Leaf | None:
        """RNN / GRU / LSTM from torch's own keys: weight_ih_l{k}[_reverse] of (gates × hidden, input)."""
        ih, hh = own["weight_ih_l0"], own.get("weight_hh_l0")
        if hh is None or len(ih.shape) != 2 or len(hh.shape) != 2:
            return None
        proj = own.get("weight_hr_l0")
        hidden = proj.shape[1] if proj is not None else hh.shape[1]
        gates = hh.shape[0] // hidden if hidden else 0
        kind = _RECURRENT.get(gates)
        if kind is None or kind not in REGISTRY:
            if kind is not None:
                raise DesignError(f"{node.path}: an {kind} layer; this Blockwork has no {kind} type yet", node.path)
            return None
        layers = 1 + max(int(m.group(1)) for k in own if (m := re.fullmatch(r"weight_ih_l(\d+)(_reverse)?", k)))
        args: dict[str, Any] = {"input_size": ih.shape[1], "hidden_size": hidden}
        if layers > 1:
            args["num_layers"] = layers
        if "bias_ih_l0" not in own:
            args["bias"] = False
        bidirectional = "weight_ih_l0_reverse" in own
        if bidirectional:
            args["bidirectional"] = True
        if proj is not None:
            args["proj_size"] = proj.shape[0]
        args["batch_first"] = True
        out = (proj.shape[0] if proj is not None else hidden) * (2 if bidirectional else 1)
        self.notes.append(
            f"{node.path}: batch_first=True assumed (the file does not say how the batch is laid out)"
            + (", tanh assumed (or relu)." if kind == "RNN" else ".")
        )
        return _Leaf(kind, args, node.path, ih.shape[1], out, "seq")

    def attention(self, node: OutlineNode, own: Mapping[str, TensorInfo], out_proj: OutlineNode) -> _Leaf | None:
        if "MultiheadAttention" not in REGISTRY:
            raise DesignError(f"{node.path}: a MultiheadAttention layer; this Blockwork has no such type yet")
        e = own["in_proj_weight"].shape[1]
        args: dict[str, Any] = {"embed_dim": e, "num_heads": 1, "batch_first": True}
        if "in_proj_bias" not in own:
            args["bias"] = False
        self.notes.append(f"{node.path}: num_heads=1 assumed (any divisor of {e} has the same weights).")
        return _Leaf("MultiheadAttention", args, node.path, e, e, "seq")

    def encoder_layer(self, node: OutlineNode, kids: Mapping[str, OutlineNode]) -> dict[str, Any] | None:
        """nn.TransformerEncoderLayer from its children's tensors: d_model from the attention's in_proj_weight
        (3·d, d), dim_feedforward from linear1 (ff, d)."""
        if "TransformerEncoderLayer" not in REGISTRY:
            return None
        attn = {t.name: t for t in kids["self_attn"].tensors}
        linear1 = {t.name: t for t in kids["linear1"].tensors}
        if "in_proj_weight" not in attn or "weight" not in linear1:
            return None
        d = attn["in_proj_weight"].shape[1]
        spec: dict[str, Any] = {"d_model": d, "nhead": 1, "dim_feedforward": linear1["weight"].shape[0]}
        spec["batch_first"] = True
        if "bias" not in linear1:
            spec["bias"] = False
        return spec

    def encoder(self, node: OutlineNode, kids: Mapping[str, OutlineNode]) -> _Leaf | None:
        """nn.TransformerEncoder: `layers.0`, `layers.1`, … copies of one encoder layer, and an optional norm."""
        if "TransformerEncoder" not in REGISTRY:
            return None
        copies = kids["layers"].children
        if not copies or [c.name for c in copies] != [str(i) for i in range(len(copies))] or copies[0].tensors:
            return None
        first = {c.name: c for c in copies[0].children}
        if not {"self_attn", "linear1", "linear2", "norm1", "norm2"} <= set(first):
            return None
        spec = self.encoder_layer(copies[0], first)
        if spec is None:
            return None
        args: dict[str, Any] = {"encoder_layer": {"type": "TransformerEncoderLayer", **spec}, "num_layers": len(copies)}
        if "norm" in kids:
            norm = {t.name: t for t in kids["norm"].tensors}
            if "weight" not in norm:
                return None
            args["norm"] = {"type": "LayerNorm", "normalized_shape": list(norm["weight"].shape)}
            if "bias" not in norm:
                args["norm"]["bias"] = False
        args["enable_nested_tensor"] = False
        d = spec["d_model"]
        self.notes.append(
            f"{node.path}: nhead=1, batch_first=True, post-norm and relu assumed for its layers (the weights are "
            f"the same for any head count dividing {d})."
        )
        return _Leaf("TransformerEncoder", args, node.path, d, d, "seq")

    def to_embedding(self, leaf: _Leaf) -> None:
        rows, cols = leaf.args["out_features"], leaf.args["in_features"]
        leaf.type, leaf.args = "Embedding", {"num_embeddings": rows, "embedding_dim": cols}
        leaf.takes, leaf.gives, leaf.rank = None, cols, "seq"
        leaf.alternatives = ["Linear(bias=False)"]

    # -- the chain: settle what depends on neighbours ---------------------------------------------------

    def check_chain(self) -> None:
        """Walk the layers in forward order: batch norm's rank from what feeds it, a bias-free matrix as an
        Embedding where its rows cannot be the next layer's input, size mismatches noted."""
        for i, leaf in enumerate(self.leaves):
            prev = self.leaves[i - 1] if i else None
            nxt = self.leaves[i + 1] if i + 1 < len(self.leaves) else None
            if leaf.type == "Linear" and "Embedding" in leaf.alternatives and i == 0 and nxt is not None:
                rows, cols = leaf.args["out_features"], leaf.args["in_features"]
                if nxt.takes == cols and nxt.takes != rows:
                    self.to_embedding(leaf)
            if (
                leaf.type == "Linear"
                and "MyLinear" in leaf.alternatives
                and prev is not None
                and prev.type == "MyLinear"
            ):
                rows, cols = leaf.args["out_features"], leaf.args["in_features"]  # square: either reading fits
                leaf.type, leaf.args, leaf.alternatives = "MyLinear", {"in_units": cols, "units": rows}, ["Linear"]
            if leaf.type.startswith("BatchNorm"):
                # what feeds it: the layer before, or (first in the network) what the next layer takes
                source = prev if prev is not None else (nxt if nxt is not None and nxt.type in _CONVS else None)
                rank = source.rank if source is not None else "flat"
                leaf.type = {"2d": "BatchNorm2d", "3d": "BatchNorm3d"}.get(rank, "BatchNorm1d")
                leaf.rank = rank
            elif leaf.rank == "same":
                several = leaf.type == "LayerNorm" and len(leaf.args["normalized_shape"]) > 1
                leaf.rank = prev.rank if prev is not None else ("several" if several else "flat")
            if (
                not flows_supported()
                and prev is not None
                and prev.gives is not None
                and leaf.takes is not None
                and prev.gives != leaf.takes
            ):
                spatial = prev.rank in ("1d", "2d", "3d") and leaf.rank == "flat"
                if not (spatial and leaf.takes % prev.gives == 0):
                    self.notes.append(
                        f"{leaf.path} takes {leaf.takes} but {prev.path} gives {prev.gives}: the layers do not "
                        f"form a plain chain in the file's order (a residual, branches, or a different forward "
                        f"order?); arrange them before building."
                    )
        for leaf in self.leaves:  # write the settled types into the design's entries
            name = leaf.entry.get("name")
            leaf.entry.clear()
            leaf.entry.update(type=leaf.type, **leaf.args)
            if name is not None:
                leaf.entry["name"] = name
        alternatives: dict[str, list[str]] = {}
        for leaf in self.leaves:
            if leaf.alternatives:
                alternatives.setdefault(" or ".join(leaf.alternatives), []).append(leaf.path)
        for what, paths in alternatives.items():
            shown = ", ".join(dict.fromkeys(paths))
            self.notes.insert(0, f"{shown} could also be {what}.")

    # -- filler ------------------------------------------------------------------------------------------

    def between(self, before: _Leaf | None, after: _Leaf | None) -> list[dict[str, Any]]:
        """Parameter-free layers that most likely sit between two layers (or before the first)."""
        if after is None:
            return []
        if before is None:
            return [{"type": "Flatten"}] if after.type in ("Linear", "MyLinear") else []
        out: list[dict[str, Any]] = []
        computes = before.type in ("Linear", *_CONVS) and not after.type.startswith(_NORMS)
        normalized = before.type.startswith(_NORMS) and after.type in ("Linear", "MyLinear", *_CONVS)
        if computes or normalized:  # an activation after a layer's output (after its norm, when it has one)
            out.append({"type": "ReLU"})
        if before.rank == "several" and after.type in ("Linear", "MyLinear"):  # (N, A, B) from a LayerNorm
            out.append({"type": "Flatten"})
        if before.rank == "2d" and after.type in ("Linear", "MyLinear") and before.gives:
            cells = (after.takes or before.gives) // before.gives if (after.takes or 0) % before.gives == 0 else 1
            side = math.isqrt(cells)
            size: int | list[int] = side if side * side == cells else [1, cells]
            out += [{"type": "AdaptiveAvgPool2d", "output_size": size}, {"type": "Flatten"}]
        return out


def _briefs(entries: list[dict[str, Any]]) -> str:
    return ", ".join(_brief(e) for e in entries)


def _brief(entry: Mapping[str, Any]) -> str:
    if entry["type"] == "Sequential":
        return "[" + ", ".join(_brief(e) for e in entry["layers"]) + "]"
    if entry["type"] == "AdaptiveAvgPool2d":
        return f"AdaptiveAvgPool2d({entry['output_size']})"
    return str(entry["type"])


def _identifier(path: str) -> str:
    """A shared definition's name from the module path of its first place: "net.0" → "shared_net_0"."""
    return "shared_" + re.sub(r"\W", "_", path)[:50]


def _strip_markers(entry: dict[str, Any]) -> None:
    entry.pop(_INSERTED, None)
    for child in entry.get("layers", ()):
        _strip_markers(child)


_Sizes = tuple[int | None, int | None]  # (features or channels taken, given); None: passes them through


class _Arranger:
    """Makes blocks whose layers do not run as a chain in the file's order into flow blocks the sizes allow:
    parallel chains from the block's input joined by + (equal sizes: a residual) or cat (an Inception block),
    or each child concatenated onto its input (a DenseNet block); and calls tuple-returning layers (LSTM)
    from a flow. A guess still: the description says what was assumed."""

    def __init__(self, guesser: _Guesser) -> None:
        self.g = guesser
        self.leaf_of = {id(leaf.entry): leaf for leaf in guesser.leaves}
        self.memo: dict[int, _Sizes] = {}
        self.found: dict[str, list[str]] = {}  # what was assumed → the blocks it was assumed for

    def note(self, path: str, text: str) -> None:
        self.found.setdefault(text, []).append(path or "the top level")

    def finish(self) -> None:
        for text, paths in self.found.items():
            self.g.notes.append(f"{', '.join(paths)}: {text}")

    def sizes(self, entry: dict[str, Any], path: str = "") -> _Sizes:
        if id(entry) in self.memo:
            return self.memo[id(entry)]
        if "shared" in entry:
            out = self.sizes(self.g.shared[entry["shared"]], f"shared {entry['shared']}")
        elif entry.get("type") == "Sequential":
            out = self.block(entry, path)
        elif id(entry) in self.leaf_of:
            leaf = self.leaf_of[id(entry)]
            out = (leaf.takes, leaf.gives)
        else:
            out = (None, None)  # parameter-free filler
        self.memo[id(entry)] = out
        return out

    def block(self, entry: dict[str, Any], path: str) -> _Sizes:
        children = entry["layers"]
        sizes = [self.sizes(c, f"{path}.{_key(c, i)}" if path else _key(c, i)) for i, c in enumerate(children)]
        if self.chains(sizes) and not any(self.tuple_type(c) for c in children):
            return _fold(sizes)
        real = [(i, s) for i, s in enumerate(sizes) if s[0] is not None]
        flow = self.dense(children, real, path) or self.parallel(children, real, path)
        if flow is None:
            if any(self.tuple_type(c) for c in children) and self.chains(sizes):
                flow = ([_key(c, i) for i, c in enumerate(children)], _fold(sizes))
            else:
                self.note(path, "its layers form neither a chain nor branches the sizes show; arrange them first.")
                return _fold(sizes)
        steps, out = flow
        entry["type"], entry["flow"] = "Module", steps
        return out

    def chains(self, sizes: list[_Sizes]) -> bool:
        current: int | None = None
        for takes, gives in sizes:
            if takes is not None and current is not None and takes != current:
                return False
            current = gives if gives is not None else current
        return True

    def tuple_type(self, entry: dict[str, Any]) -> bool:
        return "type" in entry and tuple_outputs(str(entry["type"])) is not None

    def dense(
        self, children: list[dict[str, Any]], real: list[tuple[int, _Sizes]], path: str
    ) -> tuple[list[Any], _Sizes] | None:
        """Each child takes the block's input with every earlier child's output concatenated (DenseNet)."""
        if len(real) < 2 or len(real) != len(children):
            return None
        start = real[0][1][0]
        width = start
        for _, (takes, gives) in real:
            if takes != width or gives is None or width is None:
                return None
            width += gives
        steps = [{"branches": [[], [_key(children[i], i)]], "merge": "cat", "dim": 1} for i, _ in real]
        self.note(path, "each child takes the block's input with the outputs before it concatenated (a dense block).")
        return steps, (start, width)

    def parallel(
        self, children: list[dict[str, Any]], real: list[tuple[int, _Sizes]], path: str
    ) -> tuple[list[Any], _Sizes] | None:
        """Chains that each start at the block's input, in the file's order, joined by + or cat."""
        if not real:
            return None
        start = real[0][1][0]
        unused = list(real)
        chains: list[list[int]] = []
        while unused:
            first = next(((i, s) for i, s in unused if s[0] == start), None)
            if first is None:
                return None
            chain, current = [first[0]], first[1][1]
            unused.remove(first)
            for item in list(unused):
                if item[1][0] == current:
                    chain.append(item[0])
                    current = item[1][1]
                    unused.remove(item)
            chains.append(chain)
        if len(chains) < 2:
            return None
        outs = [sizes_gives for sizes_gives in (dict(real)[c[-1]][1] for c in chains)]
        branches = [self.with_activations(children, chain) for chain in chains]
        if len(set(outs)) == 1:
            merge: dict[str, Any] = {"branches": branches, "merge": "add"}
            out = outs[0]
            what = "added (a residual block assumed)"
        else:
            merge = {"branches": branches, "merge": "cat", "dim": 1}
            out = sum(o for o in outs if o is not None)
            what = "concatenated along dim 1 (an Inception-like block assumed)"
        named = " | ".join(", ".join(_key(children[i], i) for i in chain) for chain in chains)
        self.note(path, f"branches {named} from one input, {what}.")
        # filler the guess put between named layers is not a place in the file: the branches hold relu ops now
        self.g.dropped |= {id(c) for c in children if c.get(_INSERTED)}
        children[:] = [c for c in children if not c.get(_INSERTED)]
        return [merge], (start, out)

    def with_activations(self, children: list[dict[str, Any]], chain: list[int]) -> list[Any]:
        steps: list[Any] = []
        for n, i in enumerate(chain):
            steps.append(_key(children[i], i))
            if n + 1 < len(chain):
                before, after = self.leaf_of.get(id(children[i])), self.leaf_of.get(id(children[chain[n + 1]]))
                if before is not None and after is not None and self.g.between(before, after)[:1] == [{"type": "ReLU"}]:
                    steps.append({"op": "relu"})
        return steps


def _fold(sizes: list[_Sizes]) -> _Sizes:
    takes = next((t for t, _ in sizes if t is not None), None)
    gives = next((g for _, g in reversed(sizes) if g is not None), None)
    return takes, gives


def _key(entry: dict[str, Any], index: int) -> str:
    return str(entry.get("name", index))
