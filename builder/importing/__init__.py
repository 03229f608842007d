"""Ways in: a design from a bare `.params` file (outline and guess), from pasted PyTorch source (parsed, never
run) and from a live nn.Module (traced)."""

from .code import code_lines, from_code
from .diff import ParamsDiff, diff_params
from .guess import guess_design
from .module import from_module
from .outline import OutlineNode, ParamsOutline, TensorInfo, outline_params

__all__ = [
    "ParamsDiff",
    "diff_params",
    "from_module",
    "code_lines",
    "from_code",
    "OutlineNode",
    "ParamsOutline",
    "TensorInfo",
    "guess_design",
    "outline_params",
]
