"""PyTorch's default initialization of a whole network, drawn as construction by hand draws it.

Most layers initialize in their constructor by calling their own `reset_parameters`, so calling it again on
every module in `net.modules()` order redraws exactly what `nn.Linear(...)` etc. drew. Two kinds do more:

- nn.MultiheadAttention constructs its `out_proj` (an nn.Linear, drawing its weight and bias) before its
  own `_reset_parameters` draws `in_proj_weight` (and zeroes out_proj.bias), and has no reset_parameters;
- nn.TransformerEncoder(layer, n) deep-copies one constructed layer n times: by hand all n copies start
  with the same weights.

`reset_like_construction` follows both, so a built network under torch.manual_seed(s) has the weights of
the hand-written one under the same seed. It is plain torch, so exported code (`to_code`) can copy it.
"""

from __future__ import annotations

from torch import nn

# Registry types holding a MultiheadAttention or a TransformerEncoder: reset_parameters alone would not
# reproduce their construction (exported code then copies reset_like_construction).
NOT_BY_RESET_PARAMETERS = frozenset({"MultiheadAttention", "TransformerEncoderLayer", "TransformerEncoder"})


def reset_like_construction(net: nn.Module) -> None:
    """Initialize every module of `net` as its constructor does, in construction order (a module used at
    several places once)."""
    done: set[int] = set()  # ids of modules already initialized by their parent (out_proj, the encoder's layers)
    for m in net.modules():
        if id(m) in done:
            continue
        if isinstance(m, nn.TransformerEncoder):
            first = m.layers[0]
            reset_like_construction(first)
            for layer in m.layers[1:]:
                layer.load_state_dict(first.state_dict())  # torch's copies of the one constructed layer
            done.update(id(sub) for layer in m.layers for sub in layer.modules())
        elif isinstance(m, nn.MultiheadAttention):
            m.out_proj.reset_parameters()  # constructed first, inside MultiheadAttention.__init__
            m._reset_parameters()  # then in_proj (or q/k/v_proj) weights; out_proj.bias set to 0
            done.add(id(m.out_proj))
        elif callable(getattr(m, "reset_parameters", None)):
            m.reset_parameters()  # type: ignore[operator]
        elif any(True for _ in m.parameters(recurse=False)) or any(True for _ in m.buffers(recurse=False)):
            raise AssertionError(f"{type(m).__name__} holds tensors but has no reset_parameters")
