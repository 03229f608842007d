"""Fuzzing the edges that take browser input: design JSON, .params and .safetensors files, CSV data.

Whatever comes in, only the project's own errors (DesignError, ParamsError) come out, with a message, in
bounded time. A few hundred cases run in `make test`; `HYPOTHESIS_PROFILE=long pytest -m fuzz` runs thousands.
"""

from __future__ import annotations

import copy
import io
import json
import os
import pickle
import struct
import zipfile

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save

from builder import (
    Design,
    DesignError,
    ParamsError,
    build,
    dry_run,
    example_names,
    load_example,
    load_params,
    save_safetensors,
)
from builder.params import read_params
from builder.safetensors_io import TIED_KEY

pytestmark = pytest.mark.fuzz

settings.register_profile(
    "ci", max_examples=100, deadline=5000, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
settings.register_profile(
    "long", max_examples=3000, deadline=5000, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

EXAMPLES = [load_example(n).to_dict() for n in example_names(heavy=False)]

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["Linear", "ReLU", "Sequential", "LazyLinear", "same", "shared", "", "0", "forward"]),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)


def paths(value, prefix=()):
    """Every path into a JSON value (dict keys and list indices)."""
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from paths(v, (*prefix, i))


@st.composite
def mutated_designs(draw):
    """A valid example with one field replaced, deleted, or a key added somewhere."""
    doc = copy.deepcopy(draw(st.sampled_from(EXAMPLES)))
    path = draw(st.sampled_from(list(paths(doc))[1:]))
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    action = draw(st.sampled_from(["replace", "delete", "add"]))
    if action == "replace":
        parent[path[-1]] = draw(json_values)
    elif action == "delete":
        del parent[path[-1]]
    elif isinstance(parent, dict):
        parent[draw(st.text(max_size=10))] = draw(json_values)
    else:
        parent.insert(path[-1], draw(json_values))
    return doc


def must_be_clean(fn, *args):
    """Call fn; the only exception allowed is DesignError, and it must say something."""
    try:
        return fn(*args)
    except DesignError as e:
        assert str(e).strip(), "empty error message"
        return None


@given(mutated_designs())
def test_mutated_designs_give_design_errors_only(doc) -> None:
    design = must_be_clean(Design.from_dict, doc)
    if design is None:
        return
    assert Design.from_json(design.to_json()) == design  # anything accepted round-trips
    if must_be_clean(dry_run, design) is not None:
        net = must_be_clean(build, design)
        assert net is not None  # a design whose dry run passes must build


@given(st.text(max_size=300))
def test_arbitrary_text_gives_design_errors_only(text) -> None:
    must_be_clean(Design.from_json, text)


@given(json_values)
def test_arbitrary_json_gives_design_errors_only(value) -> None:
    must_be_clean(Design.from_json, json.dumps(value))


# -- .params files --------------------------------------------------------------------------------------------

TIED = load_example("tied")


def tied_net():
    return build(TIED, seed=0)


def snapshot(net):
    return {k: v.clone() for k, v in net.state_dict().items()}


def load_cleanly(data) -> None:
    """Loading `data` into the tied net either works or raises ParamsError with the weights unchanged."""
    net = tied_net()
    before = snapshot(net)
    try:
        load_params(net, data)
    except ParamsError as e:
        assert str(e).strip()
        after = net.state_dict()
        for k, v in before.items():
            assert torch.equal(after[k], v), f"{k} changed by a failed load"


GOOD = io.BytesIO()
torch.save(tied_net().state_dict(), GOOD)
GOOD_BYTES = GOOD.getvalue()


@given(st.binary(max_size=2000))
def test_random_bytes(data) -> None:
    load_cleanly(data)


@given(st.integers(min_value=0, max_value=len(GOOD_BYTES) - 1))
def test_truncated_files(n) -> None:
    load_cleanly(GOOD_BYTES[:n])


@given(st.integers(min_value=0, max_value=len(GOOD_BYTES) - 1), st.integers(min_value=0, max_value=255))
def test_flipped_bytes(i, b) -> None:
    data = bytearray(GOOD_BYTES)
    data[i] = b
    load_cleanly(bytes(data))


tensor_values = st.builds(
    lambda shape, dtype: torch.zeros(shape, dtype=dtype),
    st.lists(st.integers(min_value=0, max_value=9), min_size=0, max_size=3),
    st.sampled_from([torch.float32, torch.float64, torch.float16, torch.int64, torch.bool, torch.complex64]),
)


@given(
    st.dictionaries(
        st.sampled_from(list(tied_net().state_dict()) + ["x", "2.weight.extra", ""]), tensor_values, max_size=10
    )
)
def test_state_dicts_with_wrong_keys_shapes_dtypes(state) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    load_cleanly(buffer.getvalue())


class Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/blockwork-pwned",))


class Custom:
    pass


@pytest.mark.parametrize(
    "payload",
    [
        Evil(),
        {"0.weight": Evil()},
        Custom(),
        [torch.zeros(2)],
        "text",
        42,
        {"0.weight": torch.zeros(8, 4), "meta": {"nested": torch.zeros(1)}},
    ],
)
def test_pickles_with_forbidden_content(payload, tmp_path) -> None:
    if os.path.exists("/tmp/blockwork-pwned"):
        os.remove("/tmp/blockwork-pwned")
    for writer in (lambda f: torch.save(payload, f), lambda f: pickle.dump(payload, f)):
        buffer = io.BytesIO()
        writer(buffer)
        with pytest.raises(ParamsError):
            read_params(buffer.getvalue())
        load_cleanly(buffer.getvalue())
    assert not os.path.exists("/tmp/blockwork-pwned")


def crafted(old: bytes, new: bytes) -> bytes:
    """A .params file of {"0.weight": zeros(1)} with its pickle edited (old -> new bytes)."""
    buffer = io.BytesIO()
    torch.save({"0.weight": torch.zeros(1)}, buffer)
    src = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith("data.pkl"):
                assert old in data
                data = data.replace(old, new, 1)
            dst.writestr(item, data)
    return out.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        # size (1,) stride (1,) -> size (10^6, 10^6) stride (10^6, 1): a 4 TB view of a 4-byte storage
        crafted(b"K\x01\x85q\x08K\x01\x85q\t", b"J@B\x0f\x00J@B\x0f\x00\x86q\x08J@B\x0f\x00K\x01\x86q\t"),
        # the storage declares 2^36 elements (LONG1) while its record holds 4 bytes
        crafted(b"X\x03\x00\x00\x00cpuq\x06K\x01t", b"X\x03\x00\x00\x00cpuq\x06\x8a\x05\x00\x00\x00\x00\x10t"),
    ],
    ids=["huge-view", "huge-storage"],
)
def test_huge_declared_sizes_are_refused_without_allocating(data) -> None:
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ParamsError, match="not a readable .params file"):
        read_params(data)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100 * 1024  # KiB
    load_cleanly(data)


# -- .safetensors files ---------------------------------------------------------------------------------------

SAFE_BYTES = save_safetensors(tied_net())
SAFE_HEADER_END = 8 + struct.unpack("<Q", SAFE_BYTES[:8])[0]


@given(st.integers(min_value=0, max_value=len(SAFE_BYTES) - 1))
def test_truncated_safetensors(n) -> None:
    load_cleanly(SAFE_BYTES[:n])


@given(st.integers(min_value=0, max_value=SAFE_HEADER_END + 40), st.integers(min_value=0, max_value=255))
def test_flipped_bytes_in_safetensors_headers(i, b) -> None:
    data = bytearray(SAFE_BYTES)
    data[min(i, len(data) - 1)] = b
    load_cleanly(bytes(data))


@given(st.binary(max_size=300))
def test_random_bytes_after_a_safetensors_length(tail) -> None:
    load_cleanly(struct.pack("<Q", len(tail)) + b"{" + tail)


header_entries = st.fixed_dictionaries(
    {
        "dtype": st.one_of(
            st.sampled_from(["F32", "F64", "F16", "BF16", "I64", "I32", "U8", "BOOL", "F8_E4M3", "C64", "U16"]),
            st.text(max_size=4),
        ),
        "shape": st.one_of(
            st.lists(st.integers(min_value=-2, max_value=10), max_size=4),
            st.lists(st.integers(min_value=0, max_value=10**15), max_size=40),  # a bomb of declared sizes
            json_scalars,
        ),
        "data_offsets": st.one_of(
            st.lists(st.integers(min_value=-2, max_value=400), min_size=0, max_size=3), json_scalars
        ),
    }
)


@given(
    st.dictionaries(
        st.one_of(st.sampled_from(list(tied_net().state_dict()) + ["__metadata__"]), st.text(max_size=8)),
        st.one_of(header_entries, json_values),
        max_size=8,
    ),
    st.binary(min_size=0, max_size=400),
)
def test_safetensors_headers_with_wrong_dtypes_shapes_offsets(header, data) -> None:
    text = json.dumps(header).encode()
    load_cleanly(struct.pack("<Q", len(text)) + text + data)


@given(
    st.dictionaries(
        st.sampled_from(list(tied_net().state_dict()) + ["x", "2.weight.extra"]),
        tensor_values.filter(lambda t: t.dtype != torch.complex64),
        max_size=10,
    ),
    st.dictionaries(
        st.sampled_from(["4.weight", "4.bias", "format", TIED_KEY]), st.sampled_from(["2.weight", "x", "[]"])
    ),
)
def test_safetensors_state_dicts_with_wrong_keys_shapes_dtypes_and_aliases(state, metadata) -> None:
    load_cleanly(save(state, metadata=metadata))


# -- CSV data -------------------------------------------------------------------------------------------------

CSV_GOOD = "x1,x2,label\n0.5,1.0,a\n-1.5,2.0,b\n3,4,a\n5,6,b\n7,8,a\n"
csv_cells = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.integers().map(str),
    st.text(max_size=6),
    st.sampled_from(["", "NA", "nan", "inf", '"', ",", "1e999", "True"]),
)


@st.composite
def csv_texts(draw):
    if draw(st.booleans()):
        return draw(st.text(max_size=200))  # anything at all
    rows = draw(st.integers(min_value=0, max_value=8))
    cols = draw(st.integers(min_value=1, max_value=4))
    header = draw(st.lists(st.text(max_size=5), min_size=cols, max_size=cols))
    body = [draw(st.lists(csv_cells, min_size=cols, max_size=cols + 1)) for _ in range(rows)]
    return "\n".join(",".join(r) for r in [header, *body])


@given(csv_texts(), st.sampled_from(["auto", "classification", "regression"]))
def test_csv_files_give_data_errors_only(text, task) -> None:
    from builder.data import DataError, dataset_from_table, read_csv_table

    try:
        table = read_csv_table(text.encode("utf-8", "surrogatepass"))
        for target in list(table.columns)[:2]:
            try:
                data = dataset_from_table(table, target, task=task)
            except DataError as e:
                assert str(e).strip()
            else:
                assert len(data) == len(table) and torch.isfinite(data.X).all()
    except DataError as e:
        assert str(e).strip()
    except UnicodeEncodeError:
        pass  # not a file a browser could send


def test_good_csv_reads() -> None:
    from builder.data import dataset_from_table, read_csv_table

    data = dataset_from_table(read_csv_table(CSV_GOOD.encode()), "label")
    assert data.X.shape == (5, 2) and data.classes == ("a", "b")
