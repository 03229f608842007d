"""Ways in: a design from a bare `.params` file (outline and guess), from pasted PyTorch source (parsed, never
run) and from a live nn.Module (traced)."""

from .guess import guess_design
from .outline import OutlineNode, ParamsOutline, TensorInfo, outline_params

__all__ = ["OutlineNode", "ParamsOutline", "TensorInfo", "guess_design", "outline_params"]
