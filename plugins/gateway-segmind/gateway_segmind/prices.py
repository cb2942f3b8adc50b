"""Segmind's prices for the image models this plugin declares: none (billed by GPU time).

Segmind bills each model either per GPU-second or per generation, as its model page says.
Every model in this plugin's table (``sdxl1.0-txt2img``, ``ssd-1b``, ``tinysd1.5-txt2img``,
``potraitsd1.5-txt2img``, ``flux-schnell``, ``fast-flux-schnell``) is billed per GPU-second:
its page shows only an approximate cost of one example run (``~$0.008``), which varies with the
samples, steps and size asked for.  A cost not known before the call is not guessed: no row is
shipped, and a per-generation model can be priced in the settings
(``[prices.segmind."<model>"] per_image = ...``).  Sources and dates: README, "Prices".
"""
from __future__ import annotations

from gateway.sdk import Price

PRICES: tuple[Price, ...] = ()
