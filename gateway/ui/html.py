"""HTML output: every value is escaped unless it is :class:`Html` made here.

Templates are :class:`string.Template` files under ``templates/`` (``$name`` placeholders);
:func:`render` escapes each value it fills in that is not already :class:`Html`, so a prompt
holding ``<script>`` shows as text and nothing a caller sent can become markup.
"""
from __future__ import annotations

import html
import string
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["Html", "attrs", "el", "escape", "join", "leaf", "render", "template"]


class Html(str):
    """Markup that is safe as it is (built by this module from escaped parts)."""

    __slots__ = ()


def escape(value: Any) -> Html:
    """``value`` as text in HTML (quotes included, so it is safe in an attribute too)."""
    if isinstance(value, Html):
        return value
    return Html(html.escape("" if value is None else str(value), quote=True))


def join(parts: Iterable[Any], sep: str = "") -> Html:
    """Parts joined, each escaped unless it is :class:`Html`."""
    return Html(escape(sep).join(escape(p) for p in parts))


def attrs(values: Mapping[str, Any]) -> Html:
    """`` name="value"`` pairs; a None or False value is left out, True is a bare attribute."""
    out = []
    for name, value in values.items():
        if value is None or value is False:
            continue
        out.append(f" {escape(name)}" if value is True else f' {escape(name)}="{escape(value)}"')
    return Html("".join(out))


#: Elements without an end tag.
_VOID = frozenset({"img", "input", "br", "hr", "meta", "link"})


def el(tag: str, attributes: Mapping[str, Any] | None = None, *children: Any) -> Html:
    """``<tag attributes>children</tag>`` (no end tag for a void element such as ``img``);
    children are escaped unless they are :class:`Html`."""
    if tag in _VOID:
        return Html(f"<{tag}{attrs(attributes or {})}>")
    return Html(f"<{tag}{attrs(attributes or {})}>{join(children)}</{tag}>")


def leaf(tag: str, attributes: Mapping[str, Any]) -> Html:
    """``<tag attributes/>``: an SVG element without content."""
    return Html(f"<{tag}{attrs(attributes)}/>")


@cache
def template(name: str) -> string.Template:
    """The template file ``templates/<name>`` (read once)."""
    text = resources.files(__package__).joinpath("templates", name).read_text(encoding="utf-8")
    return string.Template(text)


def render(name: str, **values: Any) -> Html:
    """Template ``name`` with ``values`` filled in (escaped unless :class:`Html`); a placeholder
    without a value is a ``KeyError`` (a bug, not a page with ``$title`` in it)."""
    return Html(template(name).substitute({k: escape(v) for k, v in values.items()}))
