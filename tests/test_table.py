"""summary() and totals() against what torch itself reports."""

from __future__ import annotations

import torch
from torch import nn

from builder import build, load_example, summary, totals
from builder.table import COLUMNS, TIED_NOTE, forget_summaries

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


# -- the frame summary keeps per network: never stale --------------------------------------------------------


def _fresh(net: nn.Module) -> list[tuple]:
    """What summary must show, read without the kept frame (forgotten first)."""
    forget_summaries()
    df = summary(net)
    return [tuple(r) for r in df.itertuples(index=False)] + [tuple(sorted(df.attrs["totals"].items()))]


def _shown(net: nn.Module) -> list[tuple]:
    df = summary(net)
    return [tuple(r) for r in df.itertuples(index=False)] + [tuple(sorted(df.attrs["totals"].items()))]


def test_summary_of_a_changed_network_shows_the_change() -> None:
    """Every change to a network summary has seen (in place, the same object) shows at the next summary,
    exactly as a summary made from scratch: a replaced layer, a load that changes a dtype, a replaced
    parameter of another shape, .to(dtype),
    requires_grad_, a lazy layer materialized, a buffer added, a layer tied to another."""
    net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.LazyLinear(2))
    changes = [
        lambda: net(torch.randn(1, 4)),  # the lazy layer materializes: uninitialized -> (2, 3)
        lambda: net.__setitem__(0, nn.Linear(4, 5)),  # a layer replaced (its output no longer fits: no matter)
        lambda: net[0].requires_grad_(False),
        lambda: net.to(torch.float64),
        lambda: net.load_state_dict({**net.state_dict(), "2.bias": torch.zeros(2, dtype=torch.float16)}, assign=True),
        lambda: setattr(net[2], "weight", nn.Parameter(torch.zeros(7, 3))),  # a parameter replaced: a new shape
        lambda: net[1].register_buffer("scale", torch.ones(6)),
        lambda: net.register_buffer("scratch", torch.ones(9), persistent=False),  # totals only
        lambda: net.__setitem__(1, net[0]),  # tied: 0.* and 1.* the same tensors
    ]
    before = _shown(net)
    for i, change in enumerate(changes):
        change()
        after = _shown(net)
        assert after == _fresh(net), f"change {i}"
        assert after != before, f"change {i} is not seen"
        before = after


def test_summary_of_an_unchanged_network_is_equal_and_its_own_frame() -> None:
    net = build(load_example("tied"))
    first = summary(net)
    first.loc[0, "key"] = "edited by the caller"
    first["extra"] = 1
    first.attrs["totals"]["unique"] = -1
    first.attrs["note"] = "changed"
    second = summary(net)
    assert list(second.columns) == COLUMNS
    assert second.loc[0, "key"] == "0.weight" and second.attrs["totals"]["unique"] == totals(net).unique
    assert second.attrs["note"] == TIED_NOTE
    assert second is not summary(net)
    with torch.no_grad():  # weight values are not shown: a load of new values gives the same table
        for p in net.parameters():
            p.add_(1.0)
    assert _shown(net) == _fresh(net)
    assert list(summary(net).dtypes) == list(second.dtypes)  # the same column types kept and made afresh


def test_summary_of_a_lazy_layer_follows_its_dtype() -> None:
    net = nn.Sequential(nn.LazyLinear(2))
    assert set(summary(net)["dtype"]) == {"float32"}
    net.to(torch.float64)  # still uninitialized: no shape to compare, its dtype still shown
    assert set(summary(net)["dtype"]) == {"float64"} and _shown(net) == _fresh(net)
