"""Per-use gradients of tied layers, against the truth: an untied copy written in plain PyTorch.

The untied copy has a separate layer at every position, each initialised equal to the shared one. Its
gradients at position i are what the shared layer receives through use i, so `tied_gradients` must return
exactly those, and they must add up to the .grad of an ordinary backward of the tied network.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import builder
import builder.figures  # test_figures reads builder.figures: imported here, not by luck of test order
from builder import Design, DesignError, build, load_example, make_batch, make_loss, tied_gradients
from builder.layers import MyLinear

TOL = dict(rtol=1e-5, atol=1e-6)


def _loss(out: torch.Tensor) -> torch.Tensor:
    return (out**2).sum() + out.sum()  # touches every output, gradients not all equal


# -- the networks: first layer, shared layer, last layer, input -----------------------------------------------


def _parts(kind: str) -> tuple[nn.Module, nn.Module, nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    if kind == "Linear":
        return nn.Linear(4, 6), nn.Linear(6, 6), nn.Linear(6, 2), torch.randn(3, 4)
    if kind == "Conv2d":
        return (
            nn.Conv2d(1, 3, 3, padding=1),
            nn.Conv2d(3, 3, 3, padding=1),
            nn.Sequential(nn.Flatten(), nn.Linear(3 * 5 * 5, 2)),
            torch.randn(2, 1, 5, 5),
        )
    if kind == "MyLinear":
        shared = MyLinear(6, 6)
        with torch.no_grad():
            shared.weight.mul_(0.3)  # keep relu(X W + b) away from all-zero after three uses
        return nn.Linear(4, 6), shared, nn.Linear(6, 2), torch.randn(3, 4)
    if kind == "LayerNorm":
        shared = nn.LayerNorm(6)
        with torch.no_grad():
            shared.weight.uniform_(0.5, 1.5)
            shared.bias.uniform_(-0.5, 0.5)
        return nn.Linear(4, 6), shared, nn.Linear(6, 2), torch.randn(3, 4)
    if kind == "Conv1d":
        return (
            nn.Conv1d(2, 4, 3, padding=1),
            nn.Conv1d(4, 4, 3, padding=1),
            nn.Sequential(nn.Flatten(), nn.Linear(4 * 7, 2)),
            torch.randn(2, 2, 7),
        )
    raise AssertionError(kind)


def _top(first: nn.Module, uses: list[nn.Module], last: nn.Module) -> nn.Sequential:
    """nn.Sequential(first, Tanh, use_1, Tanh, use_2, Tanh, ..., last): the chapter's tied network."""
    layers: list[nn.Module] = [first, nn.Tanh()]
    for u in uses:
        layers += [u, nn.Tanh()]
    return nn.Sequential(*layers, last)


def _nested(first: nn.Module, uses: list[nn.Module], last: nn.Module) -> nn.Sequential:
    """The uses inside blocks at different depths:
    Sequential(Sequential(first, Tanh, use_1), Tanh, Sequential(Sequential(use_2, Tanh)), [use_3, Tanh,] last)."""
    inner = [nn.Sequential(first, nn.Tanh(), uses[0]), nn.Tanh(), nn.Sequential(nn.Sequential(uses[1], nn.Tanh()))]
    for u in uses[2:]:
        inner += [nn.Sequential(u, nn.Tanh())]
    return nn.Sequential(*inner, last)


def tied_and_untied(kind: str, n: int, where: str) -> tuple[nn.Module, nn.Module, list[nn.Module], torch.Tensor]:
    """The tied network (one shared module at n positions) and its untied copy (n separate modules,
    initialised equal), with the untied modules in forward order."""
    first, shared, last, x = _parts(kind)
    assemble = _top if where == "top" else _nested
    tied = assemble(first, [shared] * n, last)
    separate = [copy.deepcopy(shared) for _ in range(n)]
    untied = assemble(copy.deepcopy(first), separate, copy.deepcopy(last))
    return tied, untied, separate, x


@pytest.mark.parametrize("where", ["top", "nested"])
@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("kind", ["Linear", "Conv2d", "MyLinear", "LayerNorm", "Conv1d"])
def test_each_use_matches_the_untied_copy(kind: str, n: int, where: str) -> None:
    tied, untied, separate, x = tied_and_untied(kind, n, where)
    assert len({id(p) for p in tied.parameters()}) < len({id(p) for p in untied.parameters()})

    result = tied_gradients(tied, x, _loss)

    _loss(untied(x)).backward()  # the truth
    assert set(result) == {f"{k}.weight" for k in [_first_key(tied)]} | {f"{_first_key(tied)}.bias"}
    for pname in ("weight", "bias"):
        sg = result[f"{_first_key(tied)}.{pname}"]
        truth = [getattr(m, pname).grad for m in separate]
        assert len(sg) == len(sg.uses) == n
        assert all(float(u.abs().sum()) > 0 for u in sg.uses)  # every use contributes, each differently
        assert not torch.allclose(sg.uses[0], sg.uses[1])
        for got, want in zip(sg.uses, truth, strict=True):
            torch.testing.assert_close(got, want, **TOL)
        torch.testing.assert_close(sg.total, sum(truth), **TOL)
        # the ordinary .grad of the tied network is the sum, up to float rounding
        ordinary = _ordinary_grad(tied, x, pname)
        torch.testing.assert_close(sg.grad, ordinary, rtol=0, atol=0)
        assert sg.max_abs_diff == float((sg.total - sg.grad).abs().max()) < 1e-5
        assert sg.max_abs_diff <= 1e-6 * max(1.0, float(ordinary.abs().max()))
    # the other parameters' ordinary gradients are reported too
    first = next(k for k in result.grads if k not in result)
    assert result.grads[first].shape == dict(tied.named_parameters())[first].shape


def _first_key(net: nn.Module) -> str:
    """The module key of the first use of the shared layer: the first key that holds a tied tensor."""
    state = net.state_dict(keep_vars=True)
    seen: dict[int, str] = {}
    for k, t in state.items():
        if id(t) in seen:
            return seen[id(t)].rpartition(".")[0]
        seen[id(t)] = k
    raise AssertionError("no tied tensor")


def _ordinary_grad(net: nn.Module, x: torch.Tensor, pname: str) -> torch.Tensor:
    twin = copy.deepcopy(net)
    _loss(twin(x)).backward()
    return dict(twin.named_parameters())[f"{_first_key(twin)}.{pname}"].grad


def test_positions_are_named_in_forward_order() -> None:
    tied, *_, x = tied_and_untied("Linear", 3, "nested")
    sg = tied_gradients(tied, x, _loss)["0.2.weight"]
    assert sg.keys == ("0.2.weight", "2.0.0.weight", "3.0.weight")
    assert sg.where == ("0.2", "2.0.0", "3.0")
    assert sg.name == "0.2.weight"


# -- the chapter's tied example, built by Blockwork, against hand-written untied PyTorch ----------------


def test_tied_example_against_hand_written_untied_network() -> None:
    net = build(load_example("tied"), seed=0)
    x = make_batch(load_example("tied"))
    loss = make_loss("mse", (2, 1), seed=3)
    result = tied_gradients(net, x, loss)
    assert list(result) == ["2.weight", "2.bias"]

    # by hand: nn.Sequential(nn.Linear(4, 8), nn.ReLU(), a, nn.ReLU(), b, nn.ReLU(), nn.Linear(8, 1)),
    # a and b separate layers holding the shared layer's values
    a, b = nn.Linear(8, 8), nn.Linear(8, 8)
    untied = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), a, nn.ReLU(), b, nn.ReLU(), nn.Linear(8, 1))
    untied.load_state_dict(net.state_dict())  # 2.* and 4.* both hold the shared tensors
    F.mse_loss(untied(x), loss.target).backward()

    for pname in ("weight", "bias"):
        sg = result[f"2.{pname}"]
        assert sg.where == ("2", "4")
        torch.testing.assert_close(sg.uses[0], getattr(a, pname).grad, **TOL)
        torch.testing.assert_close(sg.uses[1], getattr(b, pname).grad, **TOL)
        torch.testing.assert_close(sg.total, sg.grad, **TOL)
    torch.testing.assert_close(result.grads["0.weight"], untied[0].weight.grad, **TOL)
    with torch.no_grad():
        assert result.loss == pytest.approx(float(F.mse_loss(untied(x), loss.target)))


SHARED_BLOCK = {
    "format": 1,
    "name": "shared_block",
    "input": {"shape": [3, 4]},
    "shared": {
        "blk": {
            "type": "Sequential",
            "layers": [
                {"type": "Linear", "in_features": 4, "out_features": 4},
                {"type": "Tanh"},
                {"type": "Linear", "in_features": 4, "out_features": 4},
            ],
        }
    },
    "layers": [
        {"shared": "blk"},
        {"type": "Tanh"},
        {"shared": "blk"},
        {"type": "Tanh"},
        {"shared": "blk"},
        {"type": "Linear", "in_features": 4, "out_features": 2},
    ],
}


def test_shared_block_each_inner_layer_split_by_use() -> None:
    net = build(Design.from_dict(SHARED_BLOCK), seed=1)
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    result = tied_gradients(net, x, _loss)
    assert list(result) == ["0.0.weight", "0.0.bias", "0.2.weight", "0.2.bias"]

    blocks = [copy.deepcopy(net[0]) for _ in range(3)]  # three separate copies of the block
    untied = nn.Sequential(blocks[0], nn.Tanh(), blocks[1], nn.Tanh(), blocks[2], copy.deepcopy(net[5]))
    _loss(untied(x)).backward()
    for inner in ("0", "2"):
        for pname in ("weight", "bias"):
            sg = result[f"0.{inner}.{pname}"]
            assert sg.where == (f"0.{inner}", f"2.{inner}", f"4.{inner}")
            for got, blk in zip(sg.uses, blocks, strict=True):
                torch.testing.assert_close(got, getattr(blk[int(inner)], pname).grad, **TOL)
            torch.testing.assert_close(sg.total, sg.grad, **TOL)


def test_batchnorm_and_dropout_in_train_mode() -> None:
    torch.manual_seed(0)
    bn = nn.BatchNorm1d(6)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
    first, last = nn.Linear(4, 6), nn.Linear(6, 3)
    tied = nn.Sequential(first, bn, nn.Tanh(), nn.Dropout(0.3), nn.Linear(6, 6), bn, nn.Tanh(), last)
    separate = [copy.deepcopy(bn), copy.deepcopy(bn)]
    untied = copy.deepcopy(tied)
    untied[1], untied[5] = separate
    x = torch.randn(5, 4)
    tied.eval()

    result = tied_gradients(tied, x, _loss, train=True, seed=7)
    assert result.training
    untied.train()
    torch.manual_seed(7)  # the same dropout mask as tied_gradients draws under seed 7
    _loss(untied(x)).backward()
    for pname in ("weight", "bias"):
        sg = result[f"1.{pname}"]
        for got, m in zip(sg.uses, separate, strict=True):
            torch.testing.assert_close(got, getattr(m, pname).grad, **TOL)
        torch.testing.assert_close(sg.total, sg.grad, **TOL)
    assert not tied.training  # left in eval mode


def test_one_tensor_assigned_to_two_modules() -> None:
    """Weight tying across different modules (an encoder's weight reused by a decoder) is a shared parameter."""
    torch.manual_seed(0)
    enc, dec = nn.Linear(5, 5), nn.Linear(5, 5)
    dec.weight = enc.weight
    net = nn.Sequential(enc, nn.Tanh(), dec)
    x = torch.randn(2, 5)
    result = tied_gradients(net, x, _loss)
    assert list(result) == ["0.weight"] and result["0.weight"].where == ("0", "2")
    a, b = copy.deepcopy(enc), copy.deepcopy(dec)
    b.weight = nn.Parameter(enc.weight.detach().clone())
    _loss(nn.Sequential(a, nn.Tanh(), b)(x)).backward()
    torch.testing.assert_close(result["0.weight"].uses[0], a.weight.grad, **TOL)
    torch.testing.assert_close(result["0.weight"].uses[1], b.weight.grad, **TOL)


def test_no_shared_layers_gives_an_empty_mapping_and_every_grad() -> None:
    net = build(load_example("sequential_mlp"), seed=0)
    result = tied_gradients(net, make_batch(load_example("sequential_mlp")), make_loss("sum", (2, 10)))
    assert len(result) == 0 and list(result.grads) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert (result.norms()["uses"] == 1).all()


# -- the caller's network is left exactly as it was -------------------------------------------------------


def _snapshot(net: nn.Module) -> dict:
    return {
        "state": {k: v.detach().clone() for k, v in net.state_dict().items()},
        "grads": {k: None if p.grad is None else p.grad.clone() for k, p in net.named_parameters()},
        "modes": [m.training for m in net.modules()],
        "devices": {t.device for t in net.state_dict().values()},
        "keys": list(net.state_dict()),
        "param_ids": [id(p) for p in net.parameters()],
        "hooks": [(len(m._forward_hooks), len(m._forward_pre_hooks)) for m in net.modules()],
    }


def _assert_same(before: dict, after: dict) -> None:
    assert before["keys"] == after["keys"]
    assert before["modes"] == after["modes"]
    assert before["devices"] == after["devices"]
    assert before["param_ids"] == after["param_ids"]
    assert before["hooks"] == after["hooks"]
    for k, v in before["state"].items():
        assert torch.equal(v, after["state"][k]), k
    for k, g in before["grads"].items():
        assert (g is None and after["grads"][k] is None) or torch.equal(g, after["grads"][k]), k


@pytest.mark.parametrize("train", [None, True, False])
def test_network_left_unchanged(train: bool | None) -> None:
    tied, _, _, x = tied_and_untied("Linear", 3, "nested")
    tied.append(nn.BatchNorm1d(2))  # running statistics would change in a train-mode forward
    _loss(tied(x)).backward()  # existing gradients must survive
    tied.eval()
    tied[0].train()  # mixed modes must survive too
    tied[-1].bias.grad = None  # a gradient that is absent must stay absent
    before = _snapshot(tied)
    tied_gradients(tied, x, _loss, train=train)
    _assert_same(before, _snapshot(tied))


def test_network_without_grads_keeps_none() -> None:
    net = build(load_example("tied"), seed=0)
    before = _snapshot(net)
    tied_gradients(net, make_batch(load_example("tied")), make_loss("sum", (2, 1)))
    assert all(p.grad is None for p in net.parameters())
    _assert_same(before, _snapshot(net))


def test_network_left_unchanged_when_the_forward_fails() -> None:
    net = build(load_example("tied"), seed=0)
    before = _snapshot(net)
    with pytest.raises(DesignError, match=r"cannot take an input of shape \(2, 5\)"):
        tied_gradients(net, torch.randn(2, 5), _loss)
    _assert_same(before, _snapshot(net))


# -- bad input: clear messages ---------------------------------------------------------------------------


def test_lazy_network_refused() -> None:
    with pytest.raises(DesignError, match="lazy parameters"):
        tied_gradients(nn.Sequential(nn.LazyLinear(3)), torch.randn(2, 4), _loss)


def test_meta_network_refused() -> None:
    with pytest.raises(DesignError, match="meta device"):
        tied_gradients(builder.instantiate(load_example("tied")), torch.randn(2, 4), _loss)


def test_loss_must_be_a_scalar() -> None:
    net = build(load_example("tied"), seed=0)
    with pytest.raises(DesignError, match="single number"):
        tied_gradients(net, make_batch(load_example("tied")), lambda out: out * 2)


def test_not_a_module() -> None:
    with pytest.raises(TypeError, match="nn.Module"):
        tied_gradients("net", torch.zeros(1), _loss)  # type: ignore[arg-type]


# -- batches and losses ---------------------------------------------------------------------------------


def test_batches() -> None:
    d = load_example("tied")
    assert torch.equal(make_batch(d, "example"), builder.example_input(d))
    r1, r2, r3 = make_batch(d, "random", seed=1), make_batch(d, "random", seed=1), make_batch(d, "random", seed=2)
    assert r1.shape == (2, 4) and torch.equal(r1, r2) and not torch.equal(r1, r3)
    with pytest.raises(DesignError, match="batch must be one of"):
        make_batch(d, "mnist")


def test_random_indices_stay_below_the_vocabulary() -> None:
    d = Design.from_dict(
        {
            "format": 1,
            "input": {"shape": [4, 6], "dtype": "int64"},
            "layers": [{"type": "Embedding", "num_embeddings": 5, "embedding_dim": 3}, {"type": "Flatten"}],
        }
    )
    x = make_batch(d, "random", seed=0)
    assert x.dtype == torch.int64 and int(x.max()) < 5 and int(x.max()) > 0


def test_losses_are_pure_and_match_torch() -> None:
    out = torch.randn(4, 3)
    assert make_loss("sum", (4, 3))(out) == out.sum()
    mse = make_loss("mse", (4, 3), seed=5)
    assert torch.equal(mse.target, make_loss("mse", (4, 3), seed=5).target)
    torch.testing.assert_close(mse(out), F.mse_loss(out, mse.target))
    ce = make_loss("cross_entropy", (4, 3), seed=5)
    assert ce.target.shape == (4,) and ce.target.dtype == torch.int64 and int(ce.target.max()) < 3
    torch.testing.assert_close(ce(out), F.cross_entropy(out, ce.target))
    assert make_loss("cross_entropy", (2, 4, 5, 5)).target.shape == (2, 5, 5)


def test_bad_losses_explained() -> None:
    with pytest.raises(DesignError, match="at least 2 classes, but it has 1"):
        make_loss("cross_entropy", (2, 1))
    with pytest.raises(DesignError, match="loss must be one of"):
        make_loss("hinge", (2, 1))
    with pytest.raises(DesignError, match=r"expects an output of shape \(2, 1\)"):
        make_loss("sum", (2, 1))(torch.zeros(3))


# -- figures --------------------------------------------------------------------------------------------


def test_figures() -> None:
    net = build(load_example("tied"), seed=0)
    result = tied_gradients(net, make_batch(load_example("tied")), make_loss("sum", (2, 1)))
    bars = builder.figures.norms_figure(result)
    assert len(bars.data[0].y) == 6 and "shared ×2" in bars.data[0].y[2]
    heat = builder.figures.heatmaps_figure(result["2.weight"])
    assert [a.text for a in heat.layout.annotations] == ["use 1 · at 2", "use 2 · at 4", "sum of the uses", ".grad"]
    assert builder.figures.heatmaps_figure(result["2.bias"]) is None  # a vector, shown in the table
    sg = result["2.weight"]
    table = sg.table()
    assert list(table["gradient"]) == ["use 1 (at 2)", "use 2 (at 4)", "sum of the uses", ".grad (ordinary backward)"]
    i, j = sg.largest_entry()
    assert abs(float(sg.grad[i, j])) == float(sg.grad.abs().max())
    assert list(table.columns) == ["gradient", f"entry ({i}, {j})", "sum of entries", "norm"]
    for column in table.columns[1:3]:  # entries and sums add up across the uses, as gradients do
        use1, use2, total, grad = table[column]
        assert use1 + use2 == pytest.approx(total, abs=1e-6) and total == pytest.approx(grad, abs=1e-6)
    assert result["2.bias"].table().columns[1] == f"entry ({result['2.bias'].largest_entry()[0]})"


# -- lazy initialization: before and after the dry run ----------------------------------------------------


def test_instantiate_leaves_lazy_layers_uninitialized() -> None:
    d = load_example("lazy_mlp")
    net = builder.instantiate(d)
    table = builder.summary(net)
    assert list(table["shape"]) == ["uninitialized"] * 4
    assert list(table["type"]) == ["LazyLinear", "LazyLinear", "LazyLinear", "LazyLinear"]
    # on the CPU, the first forward materializes it as the chapter shows
    cpu = builder.instantiate(d, device="cpu")
    cpu(torch.randn(2, 20))
    assert [tuple(p.shape) for p in cpu.parameters()] == [tuple(p.shape) for p in build(d).parameters()]


def test_lazy_parameters_before_and_after() -> None:
    table = builder.lazy_parameters(load_example("lazy_mlp"))
    assert list(table["key"]) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert set(table["shape before"]) == {"uninitialized"} and set(table["type before"]) == {"LazyLinear"}
    assert list(table["shape after"]) == ["(256, 20)", "(256,)", "(10, 256)", "(10,)"]
    assert set(table["type after"]) == {"Linear"}
    assert list(table["inferred"])[0] == "in_features=20"  # as Inspect's shapes table writes it
    assert builder.lazy_parameters(load_example("tied")).empty


# -- issue 13, defect 8: what a student reads ----------------------------------------------------------------


def test_random_data_is_not_the_example_batch_even_with_seed_0() -> None:
    d = load_example("tied")
    assert not torch.equal(make_batch(d, "random", seed=0), make_batch(d, "example"))
    assert torch.equal(make_batch(d, "random", seed=0), torch.rand(2, 4, generator=torch.Generator().manual_seed(0)))


def test_the_sum_is_not_called_a_loss() -> None:
    assert make_loss("sum", (2, 1)).name == "Sum of the outputs"
    assert "not an error measure" in make_loss("sum", (2, 1)).describe()
    assert make_loss("mse", (2, 1)).name == "MSE loss"


def _page_lines(result, kind: str) -> list[str]:
    """The numbers the Gradients page shows (metric .5g, tables %.5f), as the check script prints them."""
    from builder.gradients import LOSS_NAMES

    out = [f"{LOSS_NAMES[kind]}: {result.loss:.5g}"]
    for name, sg in result.items():
        index = sg.largest_entry()
        rows = [(f"{name} use {i + 1} (at {w})", g) for i, (w, g) in enumerate(zip(sg.where, sg.uses, strict=True))]
        rows += [(f"{name} sum of the uses", sg.total), (f"{name} .grad", sg.grad)]
        out += [
            f"{label}: entry {index} {float(g[index]):.5f}, sum of entries {float(g.sum()):.5f}, "
            f"norm {float(g.norm()):.5f}"
            for label, g in rows
        ]
    return out


TIED_BLOCK_DROPOUT = {
    "format": 1,
    "name": "tied block",
    "input": {"shape": [3, 4]},
    "shared": {
        "blk": {
            "type": "Sequential",
            "layers": [{"type": "Linear", "in_features": 6, "out_features": 6}, {"type": "ReLU"}],
        }
    },
    "layers": [
        {"type": "Linear", "in_features": 4, "out_features": 6},
        {"type": "Dropout", "p": 0.3},
        {"shared": "blk"},
        {"shared": "blk"},
        {"type": "Linear", "in_features": 6, "out_features": 3},
    ],
}


@pytest.mark.parametrize(
    ("design", "source", "seed", "kind", "train"),
    [
        ("tied", "example", 0, "sum", True),
        ("tied", "random", 3, "mse", False),
        (TIED_BLOCK_DROPOUT, "random", 2, "cross_entropy", True),
    ],
)
def test_the_plain_pytorch_check_prints_the_pages_numbers(tmp_path, design, source, seed, kind, train) -> None:
    """The 'check it in plain PyTorch' script, run in a fresh python with the session's weights, prints exactly
    what the page shows (it used to draw torch.rand(2, 4) on fresh random weights)."""
    import subprocess
    import sys

    from builder import save_params
    from builder.gradients import check_code

    d = load_example(design) if isinstance(design, str) else Design.from_dict(design)
    net = build(d, seed=11)
    (tmp_path / "w.params").write_bytes(save_params(net))
    result = tied_gradients(
        net, make_batch(d, source, seed), make_loss(kind, (d.input_shape[0], *_out(d)), seed), train=train, seed=seed
    )
    assert len(result) >= 1
    (tmp_path / "check.py").write_text(check_code(d, result, source, seed, kind, train, "w.params"))
    done = subprocess.run([sys.executable, "check.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == _page_lines(result, kind)


def _out(d: Design) -> tuple[int, ...]:
    from builder import dry_run

    return tuple(dry_run(d).output_shape[1:])


def test_a_zero_contribution_says_why() -> None:
    """A use whose gradient is 0 at the entry the table shows gets a reason, and the reason is true of the
    network written by hand: the input column of that use is 0 (a ReLU off), or its output gets no gradient."""
    d = load_example("tied")
    x = make_batch(d)
    found = 0
    for seed in range(60):
        net = build(d, seed=seed)
        sg = tied_gradients(net, x, make_loss("sum", (2, 1)))["2.weight"]
        i, j = sg.largest_entry()
        for use, note in enumerate(sg.zero_notes):
            if note is None:
                assert float(sg.uses[use][i, j]) != 0.0
                continue
            found += 1
            assert float(sg.uses[use][i, j]) == 0.0 and "why 0" in sg.table().columns
            # the truth, by hand: the input of each use and the gradient at its output
            shared = nn.Linear(8, 8)
            truth = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), shared, nn.ReLU(), shared, nn.ReLU(), nn.Linear(8, 1))
            truth.load_state_dict(net.state_dict())
            h1 = truth[1](truth[0](x))
            a2 = truth[2](h1)
            h3 = truth[3](a2)
            a4 = truth[4](h3)
            inputs, outputs = (h1, h3), (a2, a4)
            for t in outputs:
                t.retain_grad()
            truth[6](truth[5](a4)).sum().backward()
            column, out_grad = inputs[use][:, j], outputs[use].grad[:, i]
            if note.startswith(f"input {j} of this use is 0"):
                assert bool((column == 0).all())
            elif note.startswith(f"output {i} of this use gets no gradient"):
                assert bool((out_grad == 0).all())
            else:
                assert note.startswith("a ReLU is off on the way in every sample")
                assert bool(((column == 0) | (out_grad == 0)).all())
    assert found >= 3
