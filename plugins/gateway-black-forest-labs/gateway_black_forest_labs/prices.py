"""Black Forest Labs' prices (USD, one credit being $0.01), as plain data the core prices calls with.

FLUX.2 is billed by megapixel (1024x1024 pixels) of output: the first megapixel at one price,
each further one at another, and for [pro] an edit's input images by megapixel too.  BFL
publishes only the first megapixel's price ("from ...") for [max], [flex] and [klein]: a
larger image or an edit of theirs has no known cost.  FLUX.1 models are billed per image.
BFL's answer also carries the task's ``cost`` in credits; this plugin does not read it yet,
so every cost here is an estimate.  Sources and dates: README, "Prices".
"""
from __future__ import annotations

from gateway.sdk import PerImage, PerMegapixel, Price

PRICES: tuple[Price, ...] = (
    PerMegapixel(model="flux-2-pro*", first=0.03, usd=0.015, input=0.015),
    PerMegapixel(model="flux-2-max*", first=0.07, usd=None, input=None),
    PerMegapixel(model="flux-2-flex*", first=0.05, usd=None, input=None),
    PerMegapixel(model="flux-2-klein-4b*", first=0.014, usd=None, input=None),
    PerMegapixel(model="flux-2-klein-9b*", first=0.015, usd=None, input=None),
    PerImage(model="flux-pro-1.1", usd=0.04),
    PerImage(model="flux-pro-1.1-ultra", usd=0.06),
    PerImage(model="flux-kontext-pro", usd=0.04),
    PerImage(model="flux-kontext-max", usd=0.08),
)
