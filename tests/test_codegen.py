"""Exported code: plain PyTorch that rebuilds the design's network, run the way a user runs it — in a fresh
`python` process that loads the .params file — and compared with the network Blockwork built."""

from __future__ import annotations

import ast
import io
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

import builder
from builder import Design, build, example_input, load_example, save_params, to_code

DRIVER = textwrap.dedent("""
    import runpy, sys, torch
    code, params, x, out = sys.argv[1:]
    sys.argv = [code, params]
    ns = runpy.run_path(code, run_name="__main__")  # the script's own __main__: loads params, prints the model
    model = ns["model"].eval()
    with torch.no_grad():
        torch.save(model(torch.load(x)), out)
""")


def run_module(code: str) -> dict:
    """Execute generated source in-process (fast checks); its globals."""
    namespace: dict = {"__name__": "generated"}
    exec(compile(code, "<generated>", "exec"), namespace)
    return namespace


def imports(code: str) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            found.add(node.module.split(".")[0])
    return found


def assert_same_state(a: nn.Module, b: nn.Module, values: bool = True) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert sa[k].shape == sb[k].shape, k
        if values:
            assert torch.equal(sa[k], sb[k]), k


@pytest.mark.parametrize("name", builder.example_names(heavy=False))
def test_every_example_runs_in_a_fresh_python_and_reproduces_the_outputs(name: str, tmp_path: Path) -> None:
    design = load_example(name)
    net = build(design, seed=0).eval()
    x = example_input(design, seed=1)
    code = to_code(design)
    (tmp_path / f"{name}.py").write_text(code)
    (tmp_path / f"{name}.params").write_bytes(save_params(net))
    torch.save(x, tmp_path / "x.pt")
    (tmp_path / "driver.py").write_text(DRIVER)
    done = subprocess.run(
        [sys.executable, "driver.py", f"{name}.py", f"{name}.params", "x.pt", "y.pt"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Linear" in done.stdout or "Conv" in done.stdout  # the script printed its model
    with torch.no_grad():
        assert torch.equal(torch.load(tmp_path / "y.pt"), net(x))


def test_the_script_itself_loads_a_params_path_and_prints_the_model(tmp_path: Path) -> None:
    design = load_example("tied")
    net = build(design)
    (tmp_path / "tied.py").write_text(to_code(design))
    save_params(net, tmp_path / "tied.params")
    done = subprocess.run(
        [sys.executable, "tied.py", "tied.params"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Sequential(") and "(2): Linear(in_features=8, out_features=8" in done.stdout
    bad = subprocess.run(
        [sys.executable, "tied.py", "missing.params"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert bad.returncode != 0


@pytest.mark.parametrize("name", builder.example_names(heavy=False))
def test_keys_shapes_and_imports(name: str) -> None:
    design = load_example(name)
    code = to_code(design)
    assert imports(code) <= {"torch", "sys"}
    model = run_module(code)["make_model"]()
    assert_same_state(model, build(design), values=False)


def test_the_chapters_styles() -> None:
    seq = to_code(load_example("sequential_mlp"))
    assert "nn.Sequential(nn.Linear(20, 256), nn.ReLU(), nn.Linear(256, 10))" in seq
    mlp = to_code(load_example("custom_mlp"))  # the chapter's MLP class: layers in __init__, chained in forward
    assert "self.hidden = nn.Linear(20, 256)" in mlp and "self.out = nn.Linear(256, 10)" in mlp
    assert "return self.out(F.relu(self.hidden(X)))" in mlp
    tied = to_code(load_example("tied"))
    assert "shared = nn.Linear(8, 8)" in tied
    assert "nn.Sequential(nn.Linear(4, 8), nn.ReLU(), shared, nn.ReLU(), shared, nn.ReLU(), nn.Linear(8, 1))" in tied
    lazy = to_code(load_example("lazy_mlp"))
    assert "nn.LazyLinear(256)" in lazy and "model(torch.zeros(INPUT_SHAPE))" in lazy
    nested = to_code(load_example("nested"))
    assert "self.net = nn.Sequential(nn.LazyLinear(64), nn.ReLU(), nn.LazyLinear(32), nn.ReLU())" in nested
    my = to_code(load_example("my_linear"))
    assert "class MyLinear(nn.Module):" in my and "nn.Sequential(MyLinear(64, 8), MyLinear(8, 1))" in my
    assert "class MyLinear" not in seq and "class CenteredLayer" not in my
    assert "nn.Conv2d(1, 6, kernel_size=5, padding=2)" in to_code(load_example("lenet"))


def test_shared_layers_are_one_instance_in_the_generated_model() -> None:
    model = run_module(to_code(load_example("tied")))["make_model"]()
    assert model[2] is model[4]


TRICKY = {
    "format": 1,
    "name": "tricky net!",
    "description": 'quotes """ and a backslash \\ in the description',
    "input": {"shape": [3, 6]},
    "shared": {
        "model": {"type": "Linear", "in_features": 6, "out_features": 6},  # a name the script uses itself
        "blk": {
            "type": "Sequential",
            "layers": [{"type": "Linear", "in_features": 6, "out_features": 6, "name": "inner"}, {"type": "Tanh"}],
        },
    },
    "layers": [
        {"type": "Linear", "in_features": 6, "out_features": 6, "name": "first"},
        {"type": "LayerNorm", "normalized_shape": 6},
        {"shared": "model"},
        {
            "type": "Sequential",
            "name": "body",
            "layers": [
                {"shared": "blk", "name": "a"},
                {"type": "CenteredLayer"},
                {"shared": "blk", "name": "b"},
                {"shared": "model"},
                {"type": "Dropout", "p": 0.0},
            ],
        },
        {"type": "BatchNorm1d", "num_features": 6},
        {"type": "LazyLinear", "out_features": 2, "name": "head"},
    ],
}


def test_names_unnamed_children_custom_layers_and_shared_blocks(tmp_path: Path) -> None:
    design = Design.from_dict(TRICKY)
    code = to_code(design)
    assert "class CenteredLayer" in code and 'self.add_module("1", nn.LayerNorm(normalized_shape=6))' in code
    namespace = run_module(code)
    model = namespace["make_model"]()
    net = build(design)
    assert_same_state(model, net, values=False)
    assert model.body.a is model.body.b and model.get_submodule("2") is model.body.get_submodule("3")
    assert float(model.get_submodule("4").num_batches_tracked) == 0  # the dry run left batch norm alone
    model.load_state_dict(net.state_dict())
    x = example_input(design)
    with torch.no_grad():
        assert torch.allclose(model.eval()(x), net.eval()(x))


def test_integer_inputs_for_an_embedding() -> None:
    design = Design.from_dict(
        {
            "format": 1,
            "name": "emb",
            "input": {"shape": [2, 5], "dtype": "int64"},
            "layers": [
                {"type": "Embedding", "num_embeddings": 10, "embedding_dim": 4},
                {"type": "Flatten"},
                {"type": "LazyLinear", "out_features": 3},
            ],
        }
    )
    code = to_code(design)
    assert "dtype=torch.long" in code
    assert_same_state(run_module(code)["make_model"](), build(design), values=False)


INITS = {
    "format": 1,
    "name": "inits",
    "input": {"shape": [2, 8]},
    "seed": 7,
    "init": {"method": "xavier_uniform"},
    "shared": {"tie": {"type": "Linear", "in_features": 16, "out_features": 16, "init": "my_init"}},
    "layers": [
        {"type": "LazyLinear", "out_features": 16, "init": {"method": "normal", "std": 0.5, "bias": "default"}},
        {"type": "ReLU"},
        {"shared": "tie"},
        {
            "type": "Sequential",
            "init": {"method": "kaiming_normal", "mode": "fan_out"},
            "layers": [
                {"type": "Linear", "in_features": 16, "out_features": 16},
                {"type": "ReLU"},
                {"shared": "tie"},
                {
                    "type": "Linear",
                    "in_features": 16,
                    "out_features": 16,
                    "init": {"method": "constant", "value": 0.25},
                },
            ],
        },
        {"type": "MyLinear", "in_units": 16, "units": 4},
        {"type": "Linear", "in_features": 4, "out_features": 2, "init": "default"},
    ],
}


def test_initialization_and_seed_are_reproduced(tmp_path: Path) -> None:
    design = Design.from_dict(INITS)
    code = to_code(design)
    assert "def my_init(m):" in code and "def init_kaiming_normal(" in code and "SEED = 7" in code
    model = run_module(code)["make_model"]()
    assert_same_state(model, build(design))  # the very same values
    # and in a fresh process, as a user runs it
    (tmp_path / "inits.py").write_text(code)
    script = "import runpy, torch; torch.save(runpy.run_path('inits.py')['make_model']().state_dict(), 'sd.pt')"
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    fresh = torch.load(tmp_path / "sd.pt")
    for k, v in build(design).state_dict().items():
        assert torch.equal(fresh[k], v), k


def test_a_seed_alone_is_reproduced() -> None:
    design = Design.from_dict({**load_example("tied").to_dict(), "seed": 3})
    assert_same_state(run_module(to_code(design))["make_model"](), build(design))


def test_to_code_needs_a_design() -> None:
    with pytest.raises(TypeError, match="expects a Design"):
        to_code({"layers": []})


def test_file_stem_makes_any_name_safe_for_a_file() -> None:
    from builder.codegen import file_stem

    assert file_stem("my net!/../x") == "my_net__.._x"  # no path separators survive
    assert file_stem("") == file_stem("...") == "design"
    assert file_stem(builder.load_example("tied")) == "tied"


def test_sequence_layers_export_as_torch_calls_with_the_same_seeded_weights() -> None:
    """A nested encoder layer is written as its constructor call; under a seed the exported code draws the
    weights build draws (MultiheadAttention's out_proj before in_proj, the encoder's layers as copies)."""
    design = Design.from_dict(
        {
            "format": 1,
            "seed": 5,
            "input": {"shape": [2, 6, 16]},
            "layers": [
                {
                    "type": "TransformerEncoder",
                    "name": "encoder",
                    "num_layers": 2,
                    "enable_nested_tensor": False,
                    "norm": {"type": "LayerNorm", "normalized_shape": 16},
                    "encoder_layer": {
                        "type": "TransformerEncoderLayer",
                        "d_model": 16,
                        "nhead": 2,
                        "batch_first": True,
                    },
                },
                {"type": "GroupNorm", "num_groups": 2, "num_channels": 6},
                {"type": "Upsample", "scale_factor": 2},
            ],
        }
    )
    code = to_code(design)
    assert (
        "nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 2, batch_first=True), 2, "
        "norm=nn.LayerNorm(normalized_shape=16), enable_nested_tensor=False)" in code
    )
    assert "nn.GroupNorm(2, 6)" in code and "reset_like_construction(model)" in code
    made = run_module(code)["make_model"]()
    net = build(design)
    assert_same_state(made, net)
    x = example_input(design, seed=1)
    with torch.no_grad():
        torch.testing.assert_close(made.eval()(x), net.eval()(x))


# -- flows (format 2): a class per flow block whose forward reads like the book's -------------------------------


def test_flow_blocks_read_like_the_book() -> None:
    resnet = to_code(load_example("resnet18"))
    assert "class Residual(nn.Module):" in resnet
    assert (
        "        Y = F.relu(self.bn1(self.conv1(X)))\n        Y = self.bn2(self.conv2(Y))\n        Y += X\n" in resnet
    )
    assert "        X = self.conv3(X)\n        Y += X\n        return F.relu(Y)\n" in resnet
    # one class per kind of block, its varying sizes as constructor parameters, as the book's Residual(c)
    assert "class Residual(nn.Module):" in resnet and "def __init__(self, out_channels):" in resnet
    assert "self.conv1 = nn.LazyConv2d(out_channels, kernel_size=3, padding=1)" in resnet
    assert "self.b2 = nn.Sequential(Residual(64), Residual(64))" in resnet
    assert "self.b3 = nn.Sequential(Residual2(128), Residual(128))" in resnet and "class Residual3" not in resnet
    inception = to_code(load_example("inception"))
    assert "b2 = F.relu(self.b2_2(F.relu(self.b2_1(X))))" in inception
    assert "return torch.cat((b1, b2, b3, b4), dim=1)" in inception
    dense = to_code(load_example("densenet_block"))
    assert "Y = self.net[0](X)\n        X = torch.cat((X, Y), dim=1)" in dense
    rgnet = to_code(load_example("rgnet"))
    assert 'self.add_module("block 0", ' in rgnet and 'getattr(self, "block 0")(X)' in rgnet


EVERY_STEP = {
    "format": 2,
    "name": "every step",
    "class": "Mixer",
    "input": {"shape": [2, 5, 8]},
    "layers": [
        {"type": "Linear", "in_features": 8, "out_features": 8, "name": "lin"},
        {"type": "LSTM", "input_size": 8, "hidden_size": 8, "batch_first": True, "name": "rnn"},
        {"type": "MultiheadAttention", "embed_dim": 8, "num_heads": 2, "batch_first": True, "name": "attn"},
        {"type": "Dropout", "p": 0.5, "name": "drop"},
        {"type": "LayerNorm", "normalized_shape": 8, "name": "ln"},
        {"type": "Linear", "in_features": 8, "out_features": 3, "name": "head"},
    ],
    "flow": [
        "lin",
        {"op": "relu"},
        {"branches": [["attn", "ln"], ["drop"], []], "merge": "add"},  # self-attention on an expression
        {"branches": [["lin", "drop"], [{"op": "tanh"}]], "merge": "add"},  # ends in dropout: no in-place add
        {"branches": [[{"branches": [["lin"], []], "merge": "mul"}], ["rnn"]], "merge": "stack", "dim": 0},
        {"op": "mean", "dim": [0]},
        {"op": "permute", "dims": [0, 2, 1]},
        {"op": "transpose", "dim0": 1, "dim1": 2},
        {
            "branches": [
                [{"op": "select", "dim": 1, "index": -1}],
                [{"call": "rnn", "output": "h"}, {"op": "squeeze", "dim": 0}],
                [{"call": "rnn", "output": "c"}, {"op": "reshape", "shape": [2, 8]}],
            ],
            "merge": "mean",
        },
        {"branches": [["lin", {"op": "relu"}], []], "merge": "add"},  # ends in relu: no in-place add
        {"branches": [["head"], ["head"]], "merge": "cat", "dim": 1},
        {"op": "flatten", "start_dim": 1},
    ],
}


def test_every_kind_of_step_is_written_so_that_outputs_and_gradients_match() -> None:
    design = Design.from_dict(EVERY_STEP)
    code = to_code(design)
    assert "class Mixer(nn.Module):" in code and "out, _ = self.attn(X, X, X)" in code
    assert "+=" not in code  # no branch here ends in a layer whose output may be added to in place
    net = build(design, seed=0)
    model = run_module(code)["make_model"]()
    assert_same_state(model, net, values=False)
    model.load_state_dict(net.state_dict())
    x = example_input(design, seed=3)
    net.eval(), model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), net(x))
    net.train(), model.train()
    torch.manual_seed(5)
    net(x).square().sum().backward()
    torch.manual_seed(5)
    model(x).square().sum().backward()  # in train mode too (dropout drawn alike), and backward runs
    for (k, a), (_, b) in zip(net.named_parameters(), model.named_parameters(), strict=True):
        assert torch.allclose(a.grad, b.grad), k


def test_a_bundle_of_a_flow_design_runs_as_shipped(tmp_path: Path) -> None:
    import zipfile

    design = load_example("inception")
    net = build(design, seed=0)
    zipfile.ZipFile(io.BytesIO(builder.bundle(design, net))).extractall(tmp_path)
    folder = tmp_path / "inception"
    done = subprocess.run(
        [sys.executable, "inception.py", "inception.params"], cwd=folder, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Inception(") and "(b4_2): Conv2d(192, 32, kernel_size=(1, 1)" in done.stdout
