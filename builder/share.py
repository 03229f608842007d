"""Share a design by link: the design's JSON, compressed, in the URL's query (`?design=...`).

    token = encode(design)                  # zlib + URL-safe base64, no padding: [A-Za-z0-9_-]+
    url = share_url(design, "https://blockwork.example.org/")
    design = decode(token)                  # DesignError for a tampered, truncated or oversized link

Nothing is stored on a server: the link is the design. A link comes from anyone, so `decode` checks its
size before unpacking, unpacks at most the design size limit (a small link cannot inflate into gigabytes),
and validates the result as any uploaded design is validated (Design.from_json).
"""

from __future__ import annotations

import base64
import binascii
import re
import zlib
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from .design import Design
from .errors import DesignError
from .limits import limits

PARAM = "design"  # the query parameter that carries the design
MAX_LINK_CHARS = 8_000  # of the token: browsers, proxies and chat apps cut URLs a little beyond 8 KB
_TOKEN = re.compile(r"[A-Za-z0-9_-]+")


def encode(design: Design) -> str:
    """The design as a link token. DesignError when even compressed it is too long for a link."""
    raw = design.to_json(indent=None).encode("utf-8")
    token = base64.urlsafe_b64encode(zlib.compress(raw, 9)).rstrip(b"=").decode("ascii")
    if len(token) > MAX_LINK_CHARS:
        raise DesignError(
            f"this design is too large to share by link ({len(token):,} characters compressed, "
            f"the limit is {MAX_LINK_CHARS:,}); save it in the library or download its JSON instead"
        )
    return token


def decode(token: object) -> Design:
    """The design a link token carries, validated. DesignError naming what is wrong with the link."""
    if not isinstance(token, str):
        raise DesignError(f"the share link must carry text, got {type(token).__name__}")
    token = token.strip()
    if not token:
        raise DesignError("the share link is empty: it carries no design")
    if len(token) > MAX_LINK_CHARS:
        raise DesignError(
            f"the share link is too long ({len(token):,} characters, the limit is "
            f"{MAX_LINK_CHARS:,}); share a large design as a JSON file instead"
        )
    if not _TOKEN.fullmatch(token):
        bad = next(c for c in token if not _TOKEN.fullmatch(c))
        raise DesignError(
            f"the share link is damaged: it holds the character {bad!r}, which a Blockwork link "
            f"never has. Copy the whole link again."
        )
    try:
        packed = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise DesignError(
            "the share link is damaged or cut short (its text is not a whole design); copy the whole link again"
        ) from None
    cap = limits().max_design_chars
    unpacker = zlib.decompressobj()
    try:
        raw = unpacker.decompress(packed, cap + 1)  # at most cap + 1 bytes: a small link cannot inflate far
    except zlib.error:
        raise DesignError(
            "the share link is damaged (its design does not unpack); copy the whole link again, or ask for a new one"
        ) from None
    if len(raw) > cap or unpacker.unconsumed_tail:
        raise DesignError(
            f"the share link unpacks to more than {cap:,} characters, over the design size limit "
            f"(BLOCKWORK_MAX_DESIGN_CHARS)"
        )
    if not unpacker.eof:
        raise DesignError("the share link is cut short: its design ends early; copy the whole link again")
    if unpacker.unused_data:
        raise DesignError("the share link is damaged: it has extra data after the design; copy the link again")
    try:
        return Design.from_json(raw)
    except DesignError as e:
        raise DesignError(f"the shared design is not valid: {e}", e.path) from None


def share_url(design: Design, base_url: str = "") -> str:
    """A link that opens `design` in Blockwork at `base_url` (the app's address; other query parameters are
    replaced). With no base URL, just the query: "?design=..."."""
    token = encode(design)
    parts = urlsplit(base_url or "")
    return urlunsplit(
        (parts.scheme, parts.netloc, parts.path or ("/" if parts.netloc else ""), urlencode({PARAM: token}), "")
    )


def token_from_link(text: str) -> str:
    """The design token in a pasted share link (a whole URL, "?design=...", or the token alone)."""
    text = (text or "").strip()
    if "?" in text or text.startswith(f"{PARAM}="):
        query = urlsplit(text).query if "?" in text else text
        values = parse_qs(query).get(PARAM)
        if not values:
            raise DesignError(f"this link has no {PARAM}=... in it: it is not a Blockwork share link")
        return values[-1]
    return text
