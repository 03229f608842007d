"""Format-1 artefacts made before format 2 existed (tests/fixtures/format1) still load and build the same network."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from builder import Design, build, example_input
from builder.share import decode, token_from_link
from builder.store import Store

FIXTURES = Path(__file__).parent / "fixtures" / "format1"
BUILT = json.loads((FIXTURES / "built.json").read_text())
LINKS = json.loads((FIXTURES / "links.json").read_text())


def check_same_network(design: Design, key: str) -> None:
    then = BUILT[key]
    net = build(design, seed=3).eval()
    state = net.state_dict()
    assert list(state) == then["keys"]
    assert [list(t.shape) for t in state.values()] == then["shapes"]
    with torch.no_grad():
        y = net(example_input(design))
    assert list(y.shape) == then["output_shape"]
    assert float(y.double().sum()) == pytest.approx(then["output_sum"], rel=1e-5, abs=1e-5)
    assert float(y.flatten()[0]) == pytest.approx(then["output_first"], rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("name", sorted(LINKS))
def test_a_format1_share_link_opens_the_same_network(name: str) -> None:
    design = decode(token_from_link(LINKS[name]))
    check_same_network(design, f"link:{name}")
    assert decode(token_from_link(LINKS[name])) == Design.from_json(design.to_json())  # and survives a rewrite


def test_a_format1_library_opens_every_version_unchanged(tmp_path: Path) -> None:
    db = tmp_path / "library.sqlite3"
    shutil.copy(FIXTURES / "library.sqlite3", db)  # opening writes (WAL files): never the fixture itself
    store = Store(db)
    seen = [f"library:{e.name}@{v.number}" for e in store.entries() for v in store.versions(e.name)]
    assert sorted(seen) == sorted(k for k in BUILT if k.startswith("library:"))
    for e in store.entries():
        for v in store.versions(e.name):
            check_same_network(store.load(e.name, v.number), f"library:{e.name}@{v.number}")
    assert store.load("tied net", 2).init == {"method": "normal", "std": 0.05}
    store.save("tied net", store.load("tied net", 1))  # the library keeps working on an old file
    check_same_network(store.load("tied net"), "library:tied net@1")


def test_a_format1_library_export_imports_unchanged(tmp_path: Path) -> None:
    text = (FIXTURES / "tied_net_export.json").read_text()
    assert json.loads(text)["format"] == 1
    check_same_network(Design.from_json(text), "export:tied net")
    name, version = Store(tmp_path / "new.sqlite3").import_json(text)
    assert (name, version) == ("tied net", 1)
    check_same_network(Store(tmp_path / "new.sqlite3").load(name), "export:tied net")
