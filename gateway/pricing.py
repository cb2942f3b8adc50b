"""Prices of image calls as plain data, and the cost of one upstream call.

A provider declares what its models cost as a tuple of rows (``Provider.prices``), the way
it declares its capabilities; the settings may add or replace rows (``[prices]``,
:mod:`gateway.defaults.costs`).  A row prices the models whose name matches its ``model``
pattern (``fnmatch``: ``"gpt-image-2*"``), in one of three ways:

* :class:`PerImage`: USD per image made, optionally for one ``size`` and ``quality`` only
  (patterns too), plus what each input image of an edit costs;
* :class:`PerMegapixel`: USD per megapixel (2**20 pixels) of each image made, the first
  megapixel at its own price where the provider says so, plus the input images' megapixels;
* :class:`PerToken`: USD per million tokens of the answer's ``usage`` (OpenAI's shape: input
  text and image tokens, output image and text tokens).

One call's cost (:meth:`PriceBook.cost`): with ``usage`` and a :class:`PerToken` row, from
the tokens, *exact* when every token the usage counts has a price (else the priced part, as
an estimate); otherwise the first :class:`PerImage` or :class:`PerMegapixel` row whose size
and quality match, times the images made, as an *estimate*; otherwise unknown (None).  A
price the provider does not publish is left out, never guessed.
"""
from __future__ import annotations

import io
import math
from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, NamedTuple, TypeAlias

import msgspec
from PIL import Image as PILImage

from gateway.generation import EditRequest

if TYPE_CHECKING:  # pragma: no cover
    from gateway.context import Record
    from gateway.generation import GenerationRequest, InputImage
    from gateway.provider import Provider

__all__ = ["MEGAPIXEL", "Cost", "PerImage", "PerMegapixel", "PerToken", "Price", "PriceBook", "Prices", "charge",
           "applies", "note_hit", "row_cost", "token_cost"]

#: Pixels in a megapixel, as image APIs bill them (1024x1024 is one megapixel).
MEGAPIXEL = 1024 * 1024
#: Models whose price rows are kept looked up (client-chosen names: bounded).
_MEMO_SIZE = 1024


class PerImage(msgspec.Struct, frozen=True, kw_only=True):
    """``usd`` per image made by the models matching ``model``, for images of ``size``
    (``WxH``, a pattern) and ``quality`` (a pattern) only; ``"*"`` matches any (an absent
    one included)."""

    model: str
    usd: float
    size: str = "*"
    quality: str = "*"
    #: USD per input image an edit sends; None: an edit's inputs are billed at a price not
    #: published, so the edit's cost is unknown.
    input_image: float | None = 0.0


class PerMegapixel(msgspec.Struct, frozen=True, kw_only=True):
    """``usd`` per megapixel of each image made (after the first when ``first`` is set); None
    when only the first megapixel's price is published (a larger image's cost is unknown)."""

    model: str
    usd: float | None
    #: The first megapixel of each image, when it is priced apart.
    first: float | None = None
    #: Each started megapixel is billed whole (fal's rule) instead of in proportion.
    round_up: bool = False
    #: USD per megapixel of an edit's input images; None: not published (the edit's cost is unknown).
    input: float | None = 0.0


class PerToken(msgspec.Struct, frozen=True, kw_only=True):
    """USD per million tokens of each kind the answer's ``usage`` counts; None: not published."""

    model: str
    input_text: float | None = None
    input_image: float | None = None
    output_image: float | None = None
    output_text: float | None = None


Price: TypeAlias = PerImage | PerMegapixel | PerToken
Prices: TypeAlias = tuple[Price, ...]


class Cost(NamedTuple):
    """What one upstream call cost, in USD, and whether it was computed from the provider's
    own count of what it billed (``usage``) rather than estimated from a price table."""

    usd: float
    exact: bool


class _Rows(NamedTuple):
    tokens: PerToken | None
    estimates: tuple[PerImage | PerMegapixel, ...]


#: ``cost``'s ``model`` when the caller names none: the request's.
_REQUEST: Any = object()


class PriceBook:
    """Every provider's price rows, the settings' first: a model the settings price is priced
    by the settings alone (a negotiated rate replaces the list price)."""

    def __init__(self, providers: Mapping[str, Provider], overrides: Mapping[str, Prices] | None = None) -> None:
        overrides = overrides or {}
        self._rows = {name: (tuple(overrides.get(name, ())), tuple(p.prices)) for name, p in providers.items()}
        self._memo: dict[tuple[str, str], _Rows] = {}

    def rows(self, provider: str, model: str) -> _Rows:
        """The rows that price ``model`` of ``provider``: its token row, then its estimates in order."""
        key = (provider, model)
        found = self._memo.get(key)
        if found is None:
            own, declared = self._rows.get(provider, ((), ()))
            matching = [r for r in own if fnmatchcase(model, r.model)] or [
                r for r in declared if fnmatchcase(model, r.model)]
            tokens = next((r for r in matching if isinstance(r, PerToken)), None)
            found = _Rows(tokens, tuple(r for r in matching if not isinstance(r, PerToken)))
            if len(self._memo) >= _MEMO_SIZE:
                self._memo.clear()
            self._memo[key] = found
        return found

    def cost(self, provider: Provider, req: GenerationRequest, usage: Any, images: int,
             model: Any = _REQUEST) -> Cost | None:
        """What one upstream call that made ``images`` images for ``req`` cost, priced as ``model``
        (by default the request's, else the provider's default); None when unknown (``model``
        None: the provider cannot tell what ran, :meth:`Provider.billed_model`)."""
        if model is _REQUEST:
            model = req.model or _default_model(provider, req)
        if not model or images <= 0:
            return None
        rows = self.rows(provider.name, model)
        if rows.tokens is not None and isinstance(usage, dict):
            found = token_cost(rows.tokens, usage)
            if found is not None:
                return found
        inputs = req.images if isinstance(req, EditRequest) else []
        for row in rows.estimates:
            if applies(row, req):
                return row_cost(row, req, images, inputs)
        return None


def _default_model(provider: Provider, req: GenerationRequest) -> str | None:
    caps = provider.capabilities
    if isinstance(req, EditRequest) and caps.default_edit_model:
        return caps.default_edit_model
    return caps.default_model


def token_cost(row: PerToken, usage: Mapping[str, Any]) -> Cost | None:
    """The cost of an answer's ``usage`` (OpenAI's shape), or None when it counts nothing the
    row prices.  Input tokens not split by kind are text; output tokens not split are image
    tokens (OpenAI's images API), reasoning tokens are billed as text output."""
    counts = _token_counts(usage)
    if counts is None:
        return None
    total, exact, priced = 0.0, True, False
    for kind, count in counts.items():
        if count <= 0:
            continue
        price = getattr(row, kind)
        if price is None:
            exact = False
            continue
        total += count * price / 1_000_000
        priced = True
    return Cost(total, exact) if priced else None


def _token_counts(usage: Mapping[str, Any]) -> dict[str, int] | None:
    inputs, outputs = _count(usage.get("input_tokens")), _count(usage.get("output_tokens"))
    if inputs is None and outputs is None:
        return None
    counts = dict.fromkeys(("input_text", "input_image", "output_image", "output_text"), 0)
    details = usage.get("input_tokens_details")
    if isinstance(details, dict):
        counts["input_image"] = _count(details.get("image_tokens")) or 0
        counts["input_text"] = _count(details.get("text_tokens")) or 0
        # Tokens of no stated kind (audio, cached counts beside the split) are left to text.
        counts["input_text"] += max(0, (inputs or 0) - counts["input_image"] - counts["input_text"])
    else:
        counts["input_text"] = inputs or 0
    details = usage.get("output_tokens_details")
    if isinstance(details, dict):
        counts["output_image"] = _count(details.get("image_tokens")) or 0
        counts["output_text"] = (_count(details.get("text_tokens")) or 0) + (
            _count(details.get("reasoning_tokens")) or 0)
        counts["output_image"] += max(0, (outputs or 0) - counts["output_image"] - counts["output_text"])
    else:
        counts["output_image"] = outputs or 0
    return counts


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def applies(row: PerImage | PerMegapixel, req: GenerationRequest) -> bool:
    """Whether ``row`` prices ``req``'s images: a per-image row of its size and quality (an
    absent one matches ``*`` only); any per-megapixel row."""
    if isinstance(row, PerImage):
        return fnmatchcase(req.size or "", row.size) and fnmatchcase(req.quality or "", row.quality)
    return True


def row_cost(row: PerImage | PerMegapixel, req: GenerationRequest, images: int,
             inputs: list[InputImage]) -> Cost | None:
    """The estimate ``row`` gives for ``images`` images of ``req`` (and an edit's ``inputs``);
    None when the price of a part is not published (or the image's size is not known)."""
    if isinstance(row, PerImage):
        total = row.usd * images
        if inputs:
            if row.input_image is None:
                return None
            total += row.input_image * len(inputs)
        return Cost(total, False)
    mp = _megapixels(req)
    if mp is None:
        return None
    each = _megapixel_price(row, mp)
    if each is None:
        return None
    total = each * images
    if inputs:
        in_mp = [_input_megapixels(i) for i in inputs]
        if row.input is None or None in in_mp:
            return None
        total += row.input * sum(m for m in in_mp if m is not None)
    return Cost(total, False)


def _megapixel_price(row: PerMegapixel, mp: float) -> float | None:
    if row.round_up:
        mp = float(math.ceil(mp - 1e-9))
    if row.first is None:
        return None if row.usd is None else row.usd * mp
    if mp <= 1.0:
        return row.first
    return None if row.usd is None else row.first + row.usd * (mp - 1.0)


def _megapixels(req: GenerationRequest) -> float | None:
    """Megapixels of one image of ``req``: its width and height, else its ``WxH`` size."""
    width, height = req.width, req.height
    if not (width and height) and req.size:
        w, sep, h = req.size.lower().partition("x")
        if sep and w.isdigit() and h.isdigit():
            width, height = int(w), int(h)
    if not (width and height):
        return None
    return width * height / MEGAPIXEL


def _input_megapixels(image: InputImage) -> float | None:
    """An uploaded image's megapixels, read from its header (no pixels decoded)."""
    try:
        with PILImage.open(io.BytesIO(image.data)) as img:
            width, height = img.size
    except Exception:  # noqa: BLE001 - any unreadable upload: its megapixels are unknown
        return None
    return width * height / MEGAPIXEL


def charge(record: Record, cost: Cost | None) -> None:
    """Add one billed call's cost to the request's.  An unknown cost makes the request's
    unknown (None) for good; ``cost_exact`` holds while every billed call was exact."""
    record.cost_calls += 1
    if cost is None or record.cost is None:
        record.cost = None
        record.cost_exact = False
        return
    record.cost += cost.usd
    record.cost_exact = cost.exact and (record.cost_exact or record.cost_calls == 1)


def note_hit(record: Record, saved: str | None) -> None:
    """A cache hit costs nothing; ``saved`` is what the cached answer cost when it was made
    (the value it was stored with), when that was known."""
    record.cost = 0.0
    record.cost_exact = False
    try:
        record.cost_saved = float(saved) if saved is not None else None
    except ValueError:
        record.cost_saved = None
