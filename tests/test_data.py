"""Training data: built-in sets are local and reproducible; CSV faults are named by column and row."""

from __future__ import annotations

import io

import pytest
import torch

from builder import load_example
from builder.data import (
    DataError,
    builtin_names,
    check_input_shape,
    check_output_shape,
    dataset_from_table,
    make_dataset,
    read_csv,
    read_csv_table,
)

GOOD_CSV = b"x1,x2,label\n0.5,1.0,cat\n1.5,-2.0,dog\n2.0,0.1,cat\n-1.0,3.0,dog\n0.0,0.0,cat\n"


# -- built-in sets ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", builtin_names())
def test_builtin_sets_are_reproducible_and_well_formed(name: str) -> None:
    a, b, c = make_dataset(name, n=60, seed=1), make_dataset(name, n=60, seed=1), make_dataset(name, n=60, seed=2)
    assert torch.equal(a.X, b.X) and torch.equal(a.y, b.y)
    assert not torch.equal(a.X, c.X)
    if a.tokens:  # token ids (tests/test_sequence_data.py holds the tasks themselves)
        assert len(a) == 60 and a.X.dtype == torch.int64 and a.X.min() >= 0 and a.X.max() < a.vocab_size
        assert a.y.dtype == torch.int64 and a.y.shape in ((60,), a.X.shape)
        return
    assert len(a) == 60 and a.X.dtype == torch.float32 and torch.isfinite(a.X).all()
    if a.task == "classification":
        assert a.y.dtype == torch.int64 and a.y.shape == (60,)
        assert set(a.y.tolist()) == set(range(a.num_classes))  # every class present
    else:
        assert a.y.shape == (60, 1) and a.y.dtype == torch.float32


def test_shapes_of_the_sets() -> None:
    assert make_dataset("moons").sample_shape == (2,) and make_dataset("moons").is_2d
    assert make_dataset("digits", n=20).sample_shape == (1, 8, 8) and make_dataset("digits", n=20).num_classes == 10
    assert make_dataset("linear regression", n=10).sample_shape == (2,)


def test_synthetic_regression_is_the_chapters() -> None:
    d = make_dataset("linear regression", n=2000, noise=0.0)
    torch.testing.assert_close(d.y[:, 0], d.X @ torch.tensor([2.0, -3.4]) + 4.2)
    assert d.info["true_w"] == [2.0, -3.4] and d.info["true_b"] == 4.2
    assert d.info["recipe"] == {"name": "linear regression", "n": 2000, "noise": 0.0, "seed": 0}


def test_builtin_errors_are_clear(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DataError, match="no built-in data set named 'mnist'"):
        make_dataset("mnist")
    with pytest.raises(DataError, match="at least 4"):
        make_dataset("moons", n=2)
    with pytest.raises(DataError, match="noise must be"):
        make_dataset("moons", noise=-1)
    monkeypatch.setenv("BLOCKWORK_MAX_DATA_ROWS", "100")
    with pytest.raises(DataError, match="BLOCKWORK_MAX_DATA_ROWS"):
        make_dataset("moons", n=101)


# -- CSV -------------------------------------------------------------------------------------------------


def test_csv_with_text_labels_is_a_classification() -> None:
    d = read_csv(GOOD_CSV, target="label")
    assert d.task == "classification" and d.classes == ("cat", "dog")
    assert d.y.tolist() == [0, 1, 0, 1, 0]
    assert d.feature_names == ("x1", "x2") and d.X.shape == (5, 2)
    torch.testing.assert_close(d.X[1], torch.tensor([1.5, -2.0]))


def test_csv_regression_with_chosen_features_and_standardizing() -> None:
    data = b"a,b,c,price\n1,10,5,1.5\n2,20,5,2.25\n3,30,5,3.75\n4,40,5,4.5\n"
    d = read_csv(io.BytesIO(data), target="price", features=["b", "a"], standardize=True)
    assert d.task == "regression" and d.y.shape == (4, 1) and d.feature_names == ("b", "a")
    torch.testing.assert_close(d.X.mean(0), torch.zeros(2), atol=1e-6, rtol=0)
    assert d.info["mean"] == {"b": 25.0, "a": 2.5}


def test_whole_number_targets_with_few_values_are_classes() -> None:
    d = read_csv(b"x,y\n0.1,0\n0.2,1\n0.3,2\n0.4,1\n", target="y")
    assert d.task == "classification" and d.classes == ("0", "1", "2")


@pytest.mark.parametrize(
    ("csv", "kwargs", "message", "column", "row"),
    [
        (
            b"x1,x2,label\n1,2,a\n3,red,b\n5,6,a\n7,8,b\n",
            {"target": "label"},
            "column 'x2' is not numeric: row 2 holds 'red'",
            "x2",
            2,
        ),
        (
            b"x1,x2,label\n1,2,a\n3,4,b\n5,,a\n7,8,b\n",
            {"target": "label"},
            "column 'x2' has a missing value in row 3",
            "x2",
            3,
        ),
        (
            b"x1,x2,label\n1,2,a\n3,4,\n5,6,a\n7,8,b\n",
            {"target": "label"},
            "column 'label' has a missing value in row 2",
            "label",
            2,
        ),
        (
            b"x,y\n1,2.5\n2,high\n3,1\n4,2\n",
            {"target": "y", "task": "regression"},
            "column 'y' is not numeric: row 2 holds 'high'",
            "y",
            2,
        ),
        (GOOD_CSV, {"target": "price"}, "there is no column 'price'", "price", None),
        (GOOD_CSV, {"target": "label", "features": ["x1", "x3"]}, "no feature column 'x3'", "x3", None),
        (GOOD_CSV, {"target": "label", "features": ["x1", "label"]}, "'label' is the target", "label", None),
        (b"x,y\n1,a\n2,a\n3,a\n4,a\n", {"target": "y"}, "one value only", "y", None),
        (b"x,y\n1,inf\n2,1\n3,2\n4,2\n", {"target": "y", "task": "regression"}, "infinite value in row 1", "y", 1),
    ],
)
def test_csv_faults_name_the_column_and_row(
    csv: bytes, kwargs: dict, message: str, column: str, row: int | None
) -> None:
    with pytest.raises(DataError, match=message) as e:
        read_csv(csv, **kwargs)
    assert e.value.column == column and e.value.row == row


@pytest.mark.parametrize(
    ("csv", "message"),
    [
        (b"", "the file is empty"),
        (b"   \n\n", "the file is empty"),
        (b"x1,x2,label\n", "no rows of data"),
        (b"\xff\xfe\x00x", "not UTF-8"),
        (b"x1,,label\n1,2,a\n", "column 2 has no name"),
        (b'x,y\n1,"unclosed\n', "not readable CSV"),
    ],
)
def test_unreadable_files_are_refused(csv: bytes, message: str) -> None:
    with pytest.raises(DataError, match=message):
        read_csv_table(csv)


def test_oversized_files_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BLOCKWORK_MAX_DATA_ROWS", "10")
    rows = b"x,y\n" + b"".join(b"%d,%d\n" % (i, i % 2) for i in range(11))
    with pytest.raises(DataError, match="more than 10 rows.*BLOCKWORK_MAX_DATA_ROWS"):
        read_csv_table(rows)
    read_csv_table(rows[: rows.index(b"10,0")])  # 10 rows pass
    monkeypatch.setenv("BLOCKWORK_MAX_DATA_COLUMNS", "3")
    with pytest.raises(DataError, match="4 columns.*BLOCKWORK_MAX_DATA_COLUMNS"):
        read_csv_table(b"a,b,c,d\n1,2,3,4\n")
    monkeypatch.setenv("BLOCKWORK_MAX_UPLOAD_MB", "1")
    with pytest.raises(DataError, match="over the limit of 1 MB"):
        read_csv_table(b"x\n" + b"1\n" * 600_000)


def test_too_many_classes_and_too_few_rows() -> None:
    table = read_csv_table(b"x,y\n" + b"".join(b"%d,%d.5\n" % (i, i) for i in range(150)))
    with pytest.raises(DataError, match="150 distinct values, too many classes"):
        dataset_from_table(table, "y", task="classification")
    with pytest.raises(DataError, match="at least 4 are needed"):
        read_csv(b"x,y\n1,0\n2,1\n", target="y")


# -- fitting the design ------------------------------------------------------------------------------------


def test_input_shape_is_checked_against_the_data() -> None:
    moons = make_dataset("moons", n=20)
    check_input_shape(load_example("tied_moons").input_shape, moons)
    tied = load_example("tied")  # the chapter's tied MLP takes 4 features
    with pytest.raises(
        DataError,
        match=r"example input is \(2, 4\): 4 features per sample, but 'moons' has 2 "
        r"\(x1, x2\)\. Set the design's input shape to \(N, 2\)",
    ):
        check_input_shape(tied.input_shape, moons)
    with pytest.raises(
        DataError,
        match=r"samples of shape \(1, 28, 28\), but 'digits' has samples of shape "
        r"\(1, 8, 8\)",
    ):
        check_input_shape(load_example("lenet").input_shape, make_dataset("digits", n=20))
    with pytest.raises(DataError, match="int64 inputs"):
        check_input_shape((2, 2), moons, input_dtype="int64")


def test_output_shape_is_checked_against_the_task() -> None:
    moons, regression = make_dataset("moons", n=20), make_dataset("linear regression", n=20)
    check_output_shape((32, 2), moons)
    check_output_shape((32, 1), regression)
    check_output_shape((32,), regression)
    with pytest.raises(
        DataError,
        match=r"output is \(32, 1\) for a batch of 32; classifying 'moons' into 2 "
        r"classes needs \(32, 2\).*output size 2",
    ):
        check_output_shape((32, 1), moons)
    with pytest.raises(DataError, match=r"predicting 1 value per sample of 'linear regression' needs \(32, 1\)"):
        check_output_shape((32, 10), regression)


def test_a_value_too_large_for_float32_is_named() -> None:
    """Found by tests/test_fuzz.py: 3.5e38 is a finite float64 but infinite as float32."""
    table = read_csv_table(b"x,y\n0,0\n1,1\n3.5e38,0\n2,1\n")
    with pytest.raises(DataError, match=r"column 'x' holds .* in row 3, too large for float32") as info:
        dataset_from_table(table, "y")
    assert (info.value.column, info.value.row) == ("x", 3)
