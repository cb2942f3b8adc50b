"""Replicate's prices for its official image models (USD), as plain data the core prices calls with.

An official model is billed per output image, the price on its model page (``Pricing``); its
input images are not billed apart.  Every other model, a pinned version
(``owner/name:<version>``, which may run as a community model) included, is billed by the
seconds of hardware it ran on, which the gateway cannot know: those are not priced.  Only the
models whose price was confirmed have a row (README, "Prices", for sources and dates); every
cost is an estimate (Replicate's prediction answer carries run time, not money).
"""
from __future__ import annotations

from gateway.sdk import PerImage, Price

PRICES: tuple[Price, ...] = (
    PerImage(model="black-forest-labs/flux-schnell", usd=0.003),
    PerImage(model="black-forest-labs/flux-dev", usd=0.025),
    PerImage(model="black-forest-labs/flux-pro", usd=0.055),
    PerImage(model="black-forest-labs/flux-1.1-pro", usd=0.04),
    PerImage(model="black-forest-labs/flux-1.1-pro-ultra", usd=0.06),
)
