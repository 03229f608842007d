"""summary() and totals() against what torch itself reports."""

from __future__ import annotations

import torch
from torch import nn

from builder import build, load_example, summary, totals
from builder.table import COLUMNS

from .chapter import tied


def test_one_row_per_state_dict_entry_in_order() -> None:
    net = build(load_example("lenet"))
    df = summary(net)
    assert list(df.columns) == COLUMNS
    assert list(df["key"]) == list(net.state_dict())
    assert list(df["count"]) == [t.numel() for t in net.state_dict().values()]
    assert set(df["type"]) == {"Conv2d", "Linear"}
    assert (df["device"] == "cpu").all() and (df["dtype"] == "float32").all()


def test_tied_keys_are_marked_and_totals_differ() -> None:
    net = tied()  # hand-written: the table must read any module, not only ours
    df = summary(net).set_index("key")
    assert df.loc["2.weight", "tied_with"] == "4.weight"
    assert df.loc["4.bias", "tied_with"] == "2.bias"
    assert df.loc["0.weight", "tied_with"] == ""
    t = totals(net)
    assert t.unique == sum(p.numel() for p in net.parameters()) == 121
    assert t.per_use == sum(v.numel() for v in net.state_dict().values()) == 193
    assert t.tied
    assert summary(net).attrs["totals"] == {"unique": 121, "per_use": 193, "buffers": 0}
    assert "once per use" in summary(net).attrs["note"]


def test_buffers_are_rows_but_not_parameters() -> None:
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    df = summary(net).set_index("key")
    assert df.loc["1.running_mean", "kind"] == "buffer"
    assert not df.loc["1.running_mean", "requires_grad"]
    assert df.loc["1.num_batches_tracked", "dtype"] == "int64"
    t = totals(net)
    assert t.unique == t.per_use == 3 * 4 + 4 + 4 + 4
    assert t.buffers == 4 + 4 + 1


def test_lazy_parameters_are_shown_uninitialized() -> None:
    net = nn.Sequential(nn.LazyLinear(5))
    df = summary(net)
    assert list(df["shape"]) == ["uninitialized", "uninitialized"]
    assert df["count"].isna().all()
    assert totals(net).unique == 0


def test_summary_leaves_the_network_as_it_was() -> None:
    net = build(load_example("tied"))
    net.eval()
    net(torch.randn(2, 4)).sum().backward()
    grads = {k: p.grad.clone() for k, p in net.named_parameters()}
    summary(net)
    assert not net.training
    for k, p in net.named_parameters():
        assert torch.equal(p.grad, grads[k])


def test_a_layer_shared_many_times_lists_a_few_keys_and_a_count() -> None:
    shared = nn.Linear(2, 2)
    net = nn.Sequential(*[shared] * 10)
    row = summary(net).set_index("key").loc["3.weight"]
    assert row["tied_with"] == "0.weight, 1.weight, 2.weight, 4.weight, 5.weight, 6.weight and 3 more"


class _WithState(nn.Module):
    """A module that customizes what state_dict holds: an extra-state entry."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 2)

    def get_extra_state(self) -> dict:
        return {"note": 1}

    def set_extra_state(self, state: dict) -> None:
        pass


def test_rows_are_state_dict_entries_whatever_the_modules_customize() -> None:
    plain = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    plain[1].register_buffer("scratch", torch.zeros(3), persistent=False)  # not in state_dict, still a buffer
    hooked = nn.Sequential(nn.Linear(2, 3))

    def drop_bias(module: nn.Module, state: dict, prefix: str, meta: dict) -> None:
        del state["0.bias"]

    hooked.register_state_dict_post_hook(drop_bias)
    shared = nn.Linear(3, 3)
    for net in (plain, hooked, nn.Sequential(_WithState(), nn.ReLU()), nn.Sequential(shared, nn.Tanh(), shared)):
        df = summary(net)
        assert list(df["key"]) == list(net.state_dict()), net
        t = totals(net)
        assert t.unique == sum(p.numel() for p in net.parameters())
        assert t.buffers == sum(b.numel() for b in net.buffers())
    assert "0.bias" not in list(summary(hooked)["key"]) and "scratch" not in "".join(summary(plain)["key"])
    assert totals(plain).buffers == 3 + 3 + 1 + 3  # running mean, var, num_batches_tracked, and the scratch
