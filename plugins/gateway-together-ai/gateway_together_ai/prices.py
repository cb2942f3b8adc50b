"""Together AI's prices for its image models (USD), as plain data the core prices calls with.

Together bills image generation per megapixel of output: the price of one image is its
megapixels (the request's ``size``, as sent) times the model's rate.  Only the rates that were
confirmed have a row (README, "Prices", for sources and dates): a model without one, or a
request without a size, has an unknown cost.  Every cost is an estimate.
"""
from __future__ import annotations

from gateway.sdk import PerImage, PerMegapixel, Price

PRICES: tuple[Price, ...] = (
    PerMegapixel(model="black-forest-labs/FLUX.1-schnell", usd=0.0027),
    # Together's free endpoint of the same model (rate-limited, no charge).
    PerImage(model="black-forest-labs/FLUX.1-schnell-Free", usd=0.0),
)
