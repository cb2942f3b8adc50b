"""Prices of the Gemini image models (USD), as plain data the core prices calls with; the same
on the Gemini API and on Vertex AI.

Google bills the tokens of ``usageMetadata`` (which the plugin answers as OpenAI's ``usage``):
an output image is image tokens at the model's output image price.  The input and text/thinking
output prices were not confirmed in a current source: they are left out, so a cost computed
from ``usage`` prices the output images only and is reported as an estimate (set
``input_text``, ``input_image`` and ``output_text`` in ``[prices.google."<model>"]`` for exact
costs).  Sources and dates: README, "Prices".
"""
from __future__ import annotations

from gateway.sdk import PerImage, PerToken, Price

PRICES: tuple[Price, ...] = (
    PerToken(model="gemini-3-pro-image*", output_image=120.00),
    PerToken(model="gemini-3.1-flash-image*", output_image=60.00),
    PerToken(model="gemini-2.5-flash-image*", output_image=30.00),
    # One size only (1K, 1290 tokens): Google's per-image figure, for an answer without usage.
    PerImage(model="gemini-2.5-flash-image*", usd=0.039),
)
