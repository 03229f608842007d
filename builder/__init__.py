"""Blockwork's library: designs of PyTorch networks, built into real torch.nn modules.

    from builder import Design, build, summary, graph, save_params, load_params
    design = Design.from_json(open("examples/tied.json").read())
    net = build(design)                 # an ordinary nn.Sequential, lazy layers materialized
    summary(net)                        # the parameter table (pandas)
    graph(design)                       # graphviz.Digraph

No Streamlit here: the pages call this library, and so can a notebook.
"""

from .build import DryRun, LayerRun, build, dry_run, example_input
from .codegen import bundle, to_code
from .data import DataError, Dataset, make_dataset, read_csv
from .design import Block, Design, Layer, Node, Use
from .diagram import graph
from .errors import DesignError, ParamsError
from .examples import example_names, load_example
from .gradients import LOSSES, Loss, SharedGradient, TiedGradients, make_batch, make_loss, tied_gradients
from .importing import (
    OutlineNode,
    ParamsDiff,
    ParamsOutline,
    TensorInfo,
    diff_params,
    from_code,
    from_module,
    guess_design,
    outline_params,
)
from .init import initialize
from .lazy import instantiate, lazy_parameters
from .limits import limits
from .onnx_export import OnnxError, onnx_missing, to_onnx
from .params import LoadReport, check_params, load_params, read_params, save_params, save_safetensors
from .registry import REGISTRY
from .store import Store, StoreError
from .table import Totals, summary, totals
from .torchrun import training_bundle
from .training import TrainConfig, Trainer, TrainingError, TrainingHistory, train
from .undo import UndoHistory

__all__ = [
    "REGISTRY",
    "Block",
    "Design",
    "DesignError",
    "DryRun",
    "Layer",
    "LayerRun",
    "LoadReport",
    "Node",
    "ParamsError",
    "Totals",
    "Use",
    "build",
    "check_params",
    "dry_run",
    "example_input",
    "example_names",
    "graph",
    "limits",
    "load_example",
    "load_params",
    "read_params",
    "save_params",
    "summary",
    "totals",
]
__all__ += [
    "LOSSES",
    "Loss",
    "SharedGradient",
    "TiedGradients",
    "instantiate",
    "lazy_parameters",
    "make_batch",
    "make_loss",
    "tied_gradients",
]
__all__ += ["bundle", "initialize", "to_code"]
__all__ += ["Store", "StoreError", "UndoHistory"]
__all__ += [
    "OutlineNode",
    "ParamsDiff",
    "ParamsOutline",
    "diff_params",
    "TensorInfo",
    "from_code",
    "from_module",
    "guess_design",
    "outline_params",
]
__all__ += ["OnnxError", "onnx_missing", "save_safetensors", "to_onnx", "training_bundle"]
__all__ += [
    "DataError",
    "Dataset",
    "TrainConfig",
    "Trainer",
    "TrainingError",
    "TrainingHistory",
    "make_dataset",
    "read_csv",
    "train",
]
