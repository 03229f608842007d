"""The training bundle: unzipped and run with torchrun (2 processes, gloo, CPU) it trains the tied moons network
to the accuracy the app reaches, its trained.params loads strictly into make_model() and back into Blockwork; a
resumed run ends where an uninterrupted one does; every data source is reproduced exactly."""

from __future__ import annotations

import importlib.util
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest
import torch

import builder
from builder import TrainConfig, Trainer, build, load_example, load_params, training_bundle
from builder.data import BUILTINS, DataError, Dataset, dataset_from_table, make_dataset, read_csv_table
from builder.torchrun import _data_module

MOONS = TrainConfig(optimizer="adam", lr=0.01, batch_size=32, epochs=25, seed=0)  # tests/test_training.py's
MOONS_ACCURACY = 0.95  # what the app's trainer reaches with these settings (test_training.py)


def unzip(data: bytes, into: Path) -> Path:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        z.extractall(into)
        (folder,) = {name.split("/")[0] for name in z.namelist()}
    return into / folder


def module(path: Path) -> ModuleType:
    """Import a file of the bundle as its own module (each test gets fresh ones)."""
    spec = importlib.util.spec_from_file_location(f"bundle_{path.stem}_{abs(hash(path))}", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def run(args: list[str], cwd: Path, timeout: float = 300) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ""}
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_torchrun_with_two_processes_trains_the_tied_moons_network(tmp_path) -> None:
    design = load_example("tied_moons")
    data = make_dataset("moons", n=500, noise=0.15, seed=0)
    folder = unzip(training_bundle(design, data, MOONS), tmp_path)
    torchrun = Path(sys.executable).with_name("torchrun")  # the venv's; the same as python -m torch.distributed.run
    launcher = [str(torchrun)] if torchrun.exists() else [sys.executable, "-m", "torch.distributed.run"]
    out = run([*launcher, "--standalone", "--nproc_per_node=2", "train.py"], folder)
    assert "2 processes on cpu; 400 training and 100 validation samples; batch 32 (16 per process)" in out
    assert "epoch 25/25" in out and "saved trained.params" in out

    # trained.params loads strictly into make_model(), the tie intact
    make_model = module(folder / "model.py").make_model
    net = make_model()
    state = torch.load(folder / "trained.params", weights_only=True)
    net.load_state_dict(state, strict=True)
    assert net[2] is net[4] and torch.equal(state["2.weight"], state["4.weight"])
    assert not torch.equal(state["0.weight"], make_model().state_dict()["0.weight"])  # it did train

    # on the app's validation split, the accuracy the app's trainer reaches
    trainer = Trainer(net, data, MOONS)
    _, accuracy = trainer.evaluate(trainer.X_val, trainer.y_val)
    assert accuracy is not None and accuracy >= MOONS_ACCURACY
    assert f"val acc {accuracy:.3f}" in out.splitlines()[-2]  # rank 0 reported what was saved

    # and back into Blockwork
    session = build(design, seed=3)
    assert load_params(session, folder / "trained.params").ok
    assert torch.equal(session[2].weight, net[2].weight)
    assert torch.load(folder / "checkpoint.pt", weights_only=True)["epoch"] == 25


def test_a_resumed_run_ends_where_an_uninterrupted_one_does(tmp_path) -> None:
    """One process (python train.py): 3 epochs, then --resume to 6, equals 6 at once; a regression set."""
    design = load_example("linear_regression")
    data = make_dataset("linear regression", n=200, noise=0.01, seed=1)
    bundle = training_bundle(design, data, TrainConfig(optimizer="sgd", lr=0.1, momentum=0.5, epochs=6, seed=2))
    straight = unzip(bundle, tmp_path / "straight")
    run([sys.executable, "train.py"], straight)
    parts = unzip(bundle, tmp_path / "parts")
    assert "epoch 3/3" in run([sys.executable, "train.py", "--epochs", "3"], parts)
    out = run([sys.executable, "train.py", "--resume"], parts)
    assert "epoch 4/6" in out and "epoch 3/" not in out
    a = torch.load(straight / "trained.params", weights_only=True)
    b = torch.load(parts / "trained.params", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # the chapter's regression is learned: w ≈ (2, -3.4), b ≈ 4.2
    torch.testing.assert_close(a["0.weight"], torch.tensor([[2.0, -3.4]]), atol=0.02, rtol=0)
    torch.testing.assert_close(a["0.bias"], torch.tensor([4.2]), atol=0.02, rtol=0)


def test_a_token_set_trains_per_token_in_one_process(tmp_path) -> None:
    """Scores (N, T, C) against classes (N, T): the loss and accuracy per token, as the app's trainer has them."""
    design = builder.Design.from_dict(
        {
            "format": 1,
            "name": "per token",
            "input": {"shape": [4, 12], "dtype": "int64"},
            "layers": [
                {"type": "Embedding", "num_embeddings": 10, "embedding_dim": 8},
                {"type": "Linear", "in_features": 8, "out_features": 10},
            ],
        }
    )
    data = make_dataset("delayed copy", n=64, seed=3, length=12, vocab=10)
    config = TrainConfig(epochs=2, batch_size=16, seed=1)
    folder = unzip(training_bundle(design, data, config), tmp_path)
    out = run([sys.executable, "train.py"], folder)
    net = module(folder / "model.py").make_model()
    net.load_state_dict(torch.load(folder / "trained.params", weights_only=True), strict=True)
    trainer = Trainer(net, data, config)
    loss, accuracy = trainer.evaluate(trainer.X_val, trainer.y_val)
    assert f"val loss {loss:.4f}  val acc {accuracy:.3f}" in out.splitlines()[-2]


@pytest.mark.parametrize("name", list(BUILTINS))
def test_every_built_in_set_is_regenerated_from_its_seed(name: str, tmp_path) -> None:
    data = make_dataset(name, n=60, seed=7)
    source, files = _data_module(data)
    assert files == {}  # no samples shipped: the generator's source and the seed
    (tmp_path / "data.py").write_text(source)
    X, y = module(tmp_path / "data.py").load_data()
    assert torch.equal(X, data.X) and torch.equal(y, data.y)


CSV = "height,weight,label\n1.5,50,small\n1.9,90,large\n1.7,70,medium\n1.6,55,small\n1.8,85,large\n1.75,72,medium\n"


@pytest.mark.parametrize("standardize", [False, True])
@pytest.mark.parametrize(("target", "task"), [("label", "classification"), ("weight", "regression")])
def test_an_uploaded_csv_is_included_and_read_back_exactly(target: str, task, standardize: bool, tmp_path) -> None:
    features = ["height"] if target == "weight" else ["height", "weight"]
    data = dataset_from_table(read_csv_table(CSV.encode()), target, features, task=task, standardize=standardize)
    source, files = _data_module(data)
    header = files["data.csv"].decode().splitlines()[0]
    assert header == ",".join([*features, target])
    (tmp_path / "data.py").write_text(source)
    (tmp_path / "data.csv").write_bytes(files["data.csv"])
    X, y = module(tmp_path / "data.py").load_data()
    assert torch.equal(X, data.X) and torch.equal(y, data.y)
    assert ("MEANS" in source) == standardize


def test_other_data_ships_as_tensors(tmp_path) -> None:
    digits = make_dataset("digits", n=40)
    changed = Dataset("my images", digits.X * 0.5, digits.y, "classification", classes=digits.classes)
    source, files = _data_module(changed)
    assert set(files) == {"data.pt"}
    (tmp_path / "data.py").write_text(source)
    (tmp_path / "data.pt").write_bytes(files["data.pt"])
    X, y = module(tmp_path / "data.py").load_data()
    assert torch.equal(X, changed.X) and torch.equal(y, changed.y)


def test_the_bundle_holds_the_code_the_design_and_the_commands() -> None:
    design = load_example("tied_moons")
    data = make_dataset("moons", n=100)
    with zipfile.ZipFile(io.BytesIO(training_bundle(design, data, MOONS))) as z:
        names = sorted(z.namelist())
        assert names == [
            f"tied_moons_train/{n}" for n in sorted(["README.md", "data.py", "model.py", "train.py", "tied_moons.json"])
        ]
        assert z.read("tied_moons_train/model.py").decode() == builder.to_code(design)
        assert builder.Design.from_json(z.read("tied_moons_train/tied_moons.json")) == design
        readme = z.read("tied_moons_train/README.md").decode()
        train = z.read("tied_moons_train/train.py").decode()
    assert "torchrun --standalone --nproc_per_node=N train.py" in readme
    assert "--nnodes=2" in readme and "--rdzv_backend=c10d" in readme and "--resume" in readme
    assert "lr: float = 0.01" in train and "epochs: int = 25" in train and "task: str = 'classification'" in train
    assert 'dist.init_process_group("nccl" if cuda else "gloo")' in train
    compile(train, "train.py", "exec")


def test_data_that_does_not_fit_the_design_is_refused() -> None:
    with pytest.raises(DataError, match=r"samples of shape \(2,\), but .digits. has samples of shape \(1, 8, 8\)"):
        training_bundle(load_example("tied_moons"), make_dataset("digits", n=20), MOONS)
    with pytest.raises(DataError, match="make the last layer.s output size 2"):
        training_bundle(load_example("linear_regression"), make_dataset("moons", n=20), MOONS)
    with pytest.raises(TypeError, match="TrainConfig"):
        training_bundle(load_example("tied_moons"), make_dataset("moons", n=20), {"epochs": 3})  # type: ignore[arg-type]
