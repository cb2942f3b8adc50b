"""Prices of the GPT image models on Azure OpenAI (USD), as plain data the core prices calls with.

By default the same as OpenAI's list prices (the gateway-openai plugin's table, repeated here
so this plugin stands alone): token prices per million tokens of the answer's ``usage`` give
an exact cost, per-image tables (output only) an estimate.  A resource billed at other rates
(a regional deployment, a commitment) sets its own in ``[prices.azure-openai."<model>"]``.
Sources and dates: README, "Prices".  DALL-E models are retired: not priced.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping

from gateway.sdk import PerImage, PerToken, Price

_SQUARE = "1024x1024"
_OTHERS = ("1024x1536", "1536x1024")


def per_image(model: str, table: Mapping[str, tuple[float, float]]) -> Iterator[PerImage]:
    """Rows of a per-image table: quality -> (1024x1024 price, 1024x1536 and 1536x1024 price).
    An edit's input images are billed as tokens: without ``usage`` its cost is unknown."""
    for quality, (square, other) in table.items():
        yield PerImage(model=model, usd=square, size=_SQUARE, quality=quality, input_image=None)
        for size in _OTHERS:
            yield PerImage(model=model, usd=other, size=size, quality=quality, input_image=None)


_GPT_IMAGE_1 = ("gpt-image-1", "gpt-image-1-20*")

PRICES: tuple[Price, ...] = (
    *(PerToken(model=m, input_text=5.00, input_image=10.00, output_image=40.00) for m in _GPT_IMAGE_1),
    *(row for m in _GPT_IMAGE_1 for row in per_image(m, {
        "low": (0.011, 0.016), "medium": (0.042, 0.063), "high": (0.167, 0.25)})),
    PerToken(model="gpt-image-1-mini*", input_text=2.00, input_image=2.50, output_image=8.00),
    *per_image("gpt-image-1-mini*", {"low": (0.005, 0.006), "medium": (0.011, 0.015), "high": (0.036, 0.052)}),
    PerToken(model="gpt-image-1.5*", input_text=5.00, input_image=8.00, output_image=32.00, output_text=10.00),
    *per_image("gpt-image-1.5*", {"low": (0.009, 0.013), "medium": (0.034, 0.05), "high": (0.133, 0.2)}),
    PerToken(model="gpt-image-2*", input_text=5.00, input_image=8.00, output_image=30.00),
)
