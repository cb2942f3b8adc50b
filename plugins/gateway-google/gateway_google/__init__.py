"""Google's Gemini image models for the gateway: two providers in one distribution.

``google`` (the Gemini API, :mod:`gateway_google.gemini_api`) and ``vertex-ai`` (Vertex AI,
:mod:`gateway_google.vertex_ai`) speak the same ``generateContent`` request and answer
(:mod:`gateway_google.bodies`, :mod:`gateway_google.answers`); each module is its own entry point,
so either can be disabled alone (``[plugins] disable = ["vertex-ai"]``).
"""
from __future__ import annotations

from gateway_google.gemini_api import GeminiProvider
from gateway_google.vertex_ai import VertexProvider

__all__ = ["GeminiProvider", "VertexProvider"]

__version__ = "0.1.0"
