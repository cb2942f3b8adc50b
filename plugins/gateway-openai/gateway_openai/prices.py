"""OpenAI's list prices for the GPT image models (USD), as plain data the core prices calls with.

Token prices (per million tokens of the answer's ``usage``) give an exact cost; the per-image
tables (output only, by size and quality) give an estimate when an answer carries no
``usage``.  An edit's input images are billed as input image tokens, so without ``usage`` an
edit's cost is unknown (``input_image=None``).  Sources and dates: README, "Prices".
DALL-E 2 and 3 are shut down on OpenAI's API and no longer listed: not priced.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping

from gateway.sdk import PerImage, PerToken, Price

#: The three sizes the per-image tables list: the square one, and the two others at one price.
_SQUARE = "1024x1024"
_OTHERS = ("1024x1536", "1536x1024")


def per_image(model: str, table: Mapping[str, tuple[float, float]]) -> Iterator[PerImage]:
    """Rows of a per-image table: quality -> (1024x1024 price, 1024x1536 and 1536x1024 price)."""
    for quality, (square, other) in table.items():
        yield PerImage(model=model, usd=square, size=_SQUARE, quality=quality, input_image=None)
        for size in _OTHERS:
            yield PerImage(model=model, usd=other, size=size, quality=quality, input_image=None)


#: gpt-image-1 (and its dated snapshots): retired by OpenAI on 2026-10-23, still listed.
_GPT_IMAGE_1 = ("gpt-image-1", "gpt-image-1-20*")

PRICES: tuple[Price, ...] = (
    *(PerToken(model=m, input_text=5.00, input_image=10.00, output_image=40.00) for m in _GPT_IMAGE_1),
    *(row for m in _GPT_IMAGE_1 for row in per_image(m, {
        "low": (0.011, 0.016), "medium": (0.042, 0.063), "high": (0.167, 0.25)})),
    PerToken(model="gpt-image-1-mini*", input_text=2.00, input_image=2.50, output_image=8.00),
    *per_image("gpt-image-1-mini*", {"low": (0.005, 0.006), "medium": (0.011, 0.015), "high": (0.036, 0.052)}),
    PerToken(model="gpt-image-1.5*", input_text=5.00, input_image=8.00, output_image=32.00, output_text=10.00),
    *per_image("gpt-image-1.5*", {"low": (0.009, 0.013), "medium": (0.034, 0.05), "high": (0.133, 0.2)}),
    # gpt-image-2, its snapshots, 2.5 flare/sunburst and 2.6: the same token rates; no per-image
    # table (any size): an answer without `usage` has no known cost.
    PerToken(model="gpt-image-2*", input_text=5.00, input_image=8.00, output_image=30.00),
)
