"""Share links: every example round trips; a tampered, truncated or oversized link is a clear DesignError."""

from __future__ import annotations

import base64
import json
import zlib
from urllib.parse import parse_qs, urlsplit

import pytest

from builder import Design, DesignError, example_names, load_example
from builder.share import MAX_LINK_CHARS, PARAM, decode, encode, share_url


def token_of(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.urlsafe_b64encode(zlib.compress(raw)).rstrip(b"=").decode()


@pytest.mark.parametrize("name", example_names())
def test_every_example_round_trips_through_a_link(name: str) -> None:
    design = load_example(name)
    token = encode(design)
    assert token.replace("-", "").replace("_", "").isalnum() and "=" not in token  # safe in a URL as is
    assert decode(token) == design
    text = design.to_json(indent=None)
    assert len(token) < len(text) or len(text) < 300  # compressed (a tiny design's base64 overhead wins)


def test_share_url_carries_the_design_in_its_query() -> None:
    design = load_example("tied")
    url = share_url(design, "http://127.0.0.1:8501/library?old=1#top")
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path, parts.fragment) == ("http", "127.0.0.1:8501", "/library", "")
    assert list(parse_qs(parts.query)) == [PARAM]
    assert decode(parse_qs(parts.query)[PARAM][0]) == design
    assert share_url(design).startswith(f"?{PARAM}=")
    assert decode(" " + encode(design) + "\n") == design  # pasted with spaces around


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda t: t[: len(t) // 2], "cut short|damaged"),  # truncated when pasted
        (lambda t: t[:-1], "cut short|damaged"),
        (lambda t: t[:-3] + ("A" if t[-3] != "A" else "B") + t[-2:], "damaged|cut short"),  # checksum at the end
        (lambda t: t[:20] + ("x" if t[20] != "x" else "y") + t[21:], "damaged|cut short|not valid"),
        (lambda t: t + "AAAA", "extra data|damaged"),
        (lambda t: t[:10] + "!" + t[10:], "character '!'"),
        (lambda t: t.replace("-", "+"), "character '\\+'|damaged"),
        (lambda t: "", "empty"),
        (lambda t: "x", "damaged|cut short"),
        (lambda t: "hello", "damaged|cut short"),
    ],
)
def test_a_tampered_link_is_a_clear_error(make, message: str) -> None:
    token = encode(load_example("lenet"))
    bad = make(token)
    assert bad != token
    with pytest.raises(DesignError, match=message):
        decode(bad)


def test_a_link_to_an_invalid_design_names_the_field() -> None:
    doc = json.loads(load_example("tied").to_json())
    doc["layers"][0]["out_features"] = -3
    with pytest.raises(DesignError, match=r"shared design is not valid: layers\[0\]") as e:
        decode(token_of(json.dumps(doc)))
    assert e.value.path == "layers[0].out_features"
    for text in ("not json", "[1, 2]", "\xff"):
        with pytest.raises(DesignError, match="not valid"):
            decode(token_of(text))
    with pytest.raises(DesignError, match="not valid"):
        decode(token_of(b"\xff\xfe"))
    with pytest.raises(DesignError, match="must carry text"):
        decode(None)


def test_oversized_links_are_refused_both_ways(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DesignError, match="too long"):
        decode("A" * (MAX_LINK_CHARS + 1))
    # a small link that unpacks into a huge text (a zip bomb) stops at the design size limit
    bomb = token_of(b"{" + b" " * 5_000_000)
    assert len(bomb) < MAX_LINK_CHARS
    with pytest.raises(DesignError, match="more than 2,000,000 characters"):
        decode(bomb)
    token = encode(load_example("tied"))
    monkeypatch.setenv("BLOCKWORK_MAX_DESIGN_CHARS", "100")
    with pytest.raises(DesignError, match="more than 100 characters"):
        decode(token)


def test_a_design_too_large_for_a_link_says_what_to_do_instead() -> None:
    layers = [
        {"type": "Linear", "in_features": 4, "out_features": 4, "name": f"layer_{i}_{i * 7919 % 1000}"}
        for i in range(1500)
    ]
    big = Design.from_dict({"format": 1, "input": {"shape": [2, 4]}, "layers": layers})
    with pytest.raises(DesignError, match="too large to share by link.*library"):
        encode(big)
