"""The incremental dry run: remembered node results give exactly the from-scratch result, errors included.

`builder.dry_run` remembers what each node did to each input (builder.build._DryRun); `_DryRun(design,
remember=False)` asks every question afresh, on a real meta forward. For every example, and for random edits
of them, the two must agree field by field — or fail with the same message at the same path.
"""

from __future__ import annotations

import copy
import random
import threading
from typing import Any

import pytest

from builder import Design, DesignError, build, dry_run, example_names, load_example
from builder.build import _CALLS, Answers, _DryRun, clear_caches


def scratch(design: Design) -> Any:
    """The from-scratch answer: the DryRun, or the error as (message, path)."""
    try:
        return _DryRun(design, remember=False).run()
    except DesignError as e:
        return (str(e), e.path)


def remembered(design: Design) -> Any:
    try:
        return dry_run(design)
    except DesignError as e:
        return (str(e), e.path)


def test_every_example_agrees_with_a_from_scratch_run() -> None:
    clear_caches()
    for name in example_names():
        design = load_example(name)
        assert remembered(design) == scratch(design), name
        # again with every answer remembered (a renamed copy is a new design to the whole-run cache)
        again = Design.from_dict({**design.to_dict(), "name": f"{name} again"})
        assert remembered(again) == scratch(again), name


def _layer_dicts(node: Any, out: list[tuple[list[Any], int]]) -> None:
    """Every (list, index) holding a layer or block dict, anywhere in the design's JSON."""
    if isinstance(node, dict):
        for key in ("layers",):
            children = node.get(key)
            if isinstance(children, list):
                for i, child in enumerate(children):
                    out.append((children, i))
                    _layer_dicts(child, out)
        for value in node.get("shared", {}).values() if "format" in node else ():
            _layer_dicts(value, out)


def _edit(data: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """One random edit: an argument changed, a layer removed, duplicated or swapped with its neighbour."""
    data = copy.deepcopy(data)
    places: list[tuple[list[Any], int]] = []
    _layer_dicts(data, places)
    children, i = rng.choice(places)
    node = children[i]
    kind = rng.choice(["arg", "arg", "remove", "duplicate", "swap", "input"])
    ints = [k for k, v in node.items() if isinstance(v, int) and not isinstance(v, bool) and k != "format"]
    if kind == "arg" and ints:
        k = rng.choice(ints)
        node[k] = max(1, node[k] + rng.choice([-2, -1, 1, 3, node[k]]))
    elif kind == "remove" and len(children) > 1:
        del children[i]
    elif kind == "duplicate":
        children.insert(i, copy.deepcopy(node))
    elif kind == "swap" and i + 1 < len(children):
        children[i], children[i + 1] = children[i + 1], children[i]
    elif kind == "input":
        shape = data["input"]["shape"]
        j = rng.randrange(len(shape))
        shape[j] = max(1, shape[j] + rng.choice([-1, 1, 2]))
    return data


@pytest.mark.parametrize("name", example_names())
def test_random_edits_agree_with_a_from_scratch_run(name: str) -> None:
    rng = random.Random(f"edits of {name}")
    data = load_example(name).to_dict()
    checked = 0
    for _ in range(12):
        edited = _edit(data, rng)
        try:
            design = Design.from_dict(edited)
        except DesignError:
            continue  # the edit broke the JSON itself (e.g. a flow naming a removed child): not a dry-run question
        got, want = remembered(design), scratch(design)
        assert got == want, (name, design.to_json(indent=None))
        checked += 1
        if not isinstance(got, tuple):
            data = edited  # keep walking from designs that work, so edits pile up
    assert checked >= 4


def _chain(widths: list[int]) -> Design:
    layers: list[dict[str, Any]] = []
    for w in widths:
        layers += [{"type": "LazyLinear", "out_features": w}, {"type": "ReLU"}]
    return Design.from_dict({"format": 2, "input": {"shape": [2, 8]}, "layers": layers})


def test_an_edit_runs_only_the_nodes_after_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Editing layer 480 of 500 runs on meta the edited layer and those whose input changed, no others: here
    the ReLU after it and the next LazyLinear, which infers the new width and gives its old output again."""
    widths = [16 + i for i in range(250)]  # 500 layers, each a different question
    clear_caches()
    dry_run(_chain(widths))
    ran: list[str] = []
    real = _DryRun.call

    def spy(self: _DryRun, leaf: Any, *args: Any) -> Any:
        ran.append(leaf.path)
        return real(self, leaf, *args)

    monkeypatch.setattr(_DryRun, "call", spy)
    edited = [*widths[:240], 999, *widths[241:]]  # layers[480]
    run = dry_run(_chain(edited))
    assert ran == ["layers[480]", "layers[481]", "layers[482]"]
    assert run == scratch(_chain(edited))


def test_a_shared_lazy_layer_is_checked_against_its_first_use() -> None:
    """A shared LazyLinear takes its in_features from its first use; a later use with another width fails,
    even when the very same layer on that width was remembered from another design (where it came first)."""

    def design(first: int) -> Design:
        return Design.from_dict(
            {
                "format": 2,
                "input": {"shape": [2, 4]},
                "shared": {"s": {"type": "LazyLinear", "out_features": 4}},
                "layers": [
                    {"type": "Linear", "in_features": 4, "out_features": first},
                    {"shared": "s"},
                    {"shared": "s"},
                ],
            }
        )

    clear_caches()
    alone = Design.from_dict(
        {
            "format": 2,
            "input": {"shape": [2, 4]},
            "shared": {"s": {"type": "LazyLinear", "out_features": 4}},
            "layers": [{"shared": "s"}],
        }
    )
    assert dry_run(alone).layers[0].inferred == {"in_features": 4}  # "s on (2, 4)" is now remembered
    assert remembered(design(4)) == scratch(design(4))  # 4 → 4 → 4: fits
    got = remembered(design(6))  # s learns 6 at its first use; its second use gets 4 wide inputs
    assert got == scratch(design(6))
    message, path = got
    assert path == "layers[2]" and "(shared 's'): cannot take an input of shape (2, 4)" in message
    with pytest.raises(DesignError):
        build(design(6))


def test_a_child_a_flow_calls_twice_keeps_its_first_sizes() -> None:
    def design(out: int) -> Design:
        return Design.from_dict(
            {
                "format": 2,
                "input": {"shape": [2, 4]},
                "layers": [{"type": "LazyLinear", "out_features": out, "name": "fc"}],
                "flow": ["fc", "fc"],
            }
        )

    clear_caches()
    ok = remembered(design(4))
    assert ok == scratch(design(4)) and [r.input_shape for r in ok.layers] == [(2, 4), (2, 4)]
    bad = remembered(design(5))
    assert bad == scratch(design(5)) and bad[1] == "flow[1]"
    clear_caches()
    assert remembered(design(5)) == bad  # the same answer when the first call was not remembered either


def test_a_view_after_a_permute_keeps_failing() -> None:
    """Remembered outputs keep their strides: x.view after a permute fails as torch fails it."""
    design = Design.from_dict(
        {
            "format": 2,
            "input": {"shape": [2, 3, 4]},
            "layers": [{"type": "Identity"}],
            "flow": ["0", {"op": "permute", "dims": [0, 2, 1]}, {"op": "view", "shape": [2, 12]}],
        }
    )
    clear_caches()
    first = remembered(design)
    assert isinstance(first, tuple) and first == scratch(design)
    renamed = Design.from_dict({**design.to_dict(), "name": "again"})
    assert remembered(renamed) == first


def test_an_uncalled_lazy_child_is_refused_by_name() -> None:
    design = Design.from_dict(
        {
            "format": 2,
            "input": {"shape": [2, 4]},
            "layers": [
                {
                    "type": "Module",
                    "layers": [{"type": "LazyLinear", "out_features": 3}, {"type": "LazyLinear", "out_features": 3}],
                    "flow": ["0"],
                }
            ],
        }
    )
    got = remembered(design)
    assert got == scratch(design)
    assert got[1] == "layers[0].layers[1]" and "no flow ever calls it" in got[0]


def test_remembered_answers_are_bounded() -> None:
    answers: Answers[int] = Answers(3)
    for i in range(5):
        answers.put(i, i)
    assert answers.get(4) == 4 and answers.get(3) == 3 and answers.get(0) is None and len(answers) == 3
    answers.get(2)  # used last: 4 is now the least recently used
    answers.put(5, 5)
    assert answers.get(4) is None and answers.get(2) == 2 and answers.get(3) == 3
    assert len(_CALLS) <= _CALLS.size


def test_threads_get_the_from_scratch_result() -> None:
    """Sessions dry-run on their own threads against the one remembered store."""
    clear_caches()
    designs = [_chain([8 + (i * 7 + j) % 13 for j in range(30)]) for i in range(8)]
    results: dict[int, Any] = {}

    def work(i: int) -> None:
        for _ in range(3):
            results[i] = remembered(Design.from_dict({**designs[i].to_dict(), "name": f"t{i}-{_}"}))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, design in enumerate(designs):
        assert results[i] == scratch(design)


def test_a_shared_block_keeps_its_lazy_sizes_across_uses() -> None:
    """A shared block's lazy layer materializes at the block's first use; the second use is checked against it,
    whether or not each answer was remembered."""

    def design(width: int) -> Design:
        return Design.from_dict(
            {
                "format": 2,
                "input": {"shape": [2, 4]},
                "shared": {
                    "blk": {
                        "type": "Sequential",
                        "layers": [{"type": "LazyLinear", "out_features": 4}, {"type": "ReLU"}],
                    }
                },
                "layers": [
                    {"shared": "blk"},
                    {"type": "Linear", "in_features": 4, "out_features": width},
                    {"shared": "blk"},
                ],
            }
        )

    clear_caches()
    fits = remembered(design(4))
    assert fits == scratch(design(4))
    assert [r.path for r in fits.layers if r.type == "LazyLinear"] == ["shared.blk.layers[0]"] * 2
    assert fits.parameters == 20 + 20 and fits.parameters_per_use == 20 + 20 + 20
    refused = remembered(design(5))  # the block's LazyLinear learned 4 at its first use; its second gets 5
    assert refused == scratch(design(5)) and refused[1] == "shared.blk.layers[0]"
