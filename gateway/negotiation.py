"""Negotiation: the client's unified parameters read against what the provider and the
model declare (:class:`~gateway.provider.ModelCapabilities`).

Lenient mode maps a value the model does not take to the nearest one it does (or
drops it) and records the change for ``x-portkey-adjusted-params``; strict mode
raises :class:`BadParam`.  The result is a :class:`~gateway.generation.GenerationPlan`
with one request per upstream call.  An edit (``images.edits``) is read against the
model's edit capabilities, with its input images and mask, into
:class:`~gateway.generation.EditRequest` parts.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from gateway.context import IMAGES_EDITS
from gateway.errors import BadParam
from gateway.generation import (
    RESPONSE_FORMATS,
    UNIFIED,
    EditRequest,
    GenerationPlan,
    GenerationRequest,
    InputImage,
)

if TYPE_CHECKING:  # pragma: no cover
    from gateway.attempt import Attempt
    from gateway.provider import ModelCapabilities

#: Parameters the gateway answers itself for a provider that does not stream.
_STREAM_PARAMS = frozenset({"stream", "partial_images"})
#: Quality names in rising order, for mapping one provider's tiers onto another's.
_QUALITY_RANK = {"low": 0, "draft": 0, "standard": 1, "medium": 1, "auto": 1, "high": 2, "hd": 2, "premium": 2}


def parse_size(value: Any) -> tuple[int, int] | None:
    """``"1024x768"`` -> (1024, 768); None for ``auto``; 400 for anything else."""
    if value == "auto":
        return None
    if isinstance(value, str):
        w, sep, height = value.lower().partition("x")
        # ASCII digits only (``isdigit`` takes superscripts int() refuses), and few of them.
        if sep and _side(w) and _side(height):
            return int(w), int(height)
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    raise BadParam("size", f"Invalid `size` {shown}: expected WIDTHxHEIGHT, such as 1024x1024")


def _side(text: str) -> bool:
    return 0 < len(text) <= 6 and text.isascii() and text.isdecimal() and int(text) > 0


def ratio_of(value: str) -> float:
    w, _, height = value.partition(":")
    return float(w) / float(height)


def nearest_size(w: int, height: int, sizes: Sequence[str]) -> str:
    """The listed size closest in shape first, then in area."""
    def score(s: str) -> tuple[float, float]:
        sw, sh = (int(x) for x in s.split("x"))
        return (round(abs(math.log((w / height) / (sw / sh))), 3), abs(math.log((w * height) / (sw * sh))))
    return min((s for s in sizes if s != "auto"), key=score)


def nearest_ratio(w: int, height: int, ratios: Sequence[str]) -> str:
    return min(ratios, key=lambda r: abs(math.log((w / height) / ratio_of(r))))


def negotiate(attempt: Attempt) -> GenerationPlan:
    """Map the attempt's parameters (as ``provider.generation_params`` gives them) onto
    what the provider and the model take."""
    provider = attempt.provider
    params = provider.generation_params(attempt)
    caps = provider.capabilities
    strict = attempt.strict_params
    editing = attempt.endpoint == IMAGES_EDITS
    if editing:
        model = params.get("model") or caps.default_edit_model
        mc = caps.edit_model(model)
    else:
        model = params.get("model") or caps.default_model
        mc = caps.model(model)
    adjusted: list[str] = []
    where = f"{provider.name} model {model!r}" if model else provider.name

    def adjust(param: str, old: Any, new: Any, allowed: Sequence[Any] | str) -> Any:
        if strict:
            listed = allowed if isinstance(allowed, str) else ", ".join(str(a) for a in allowed)
            raise BadParam(param, f"`{param}` {old!r} is not supported by {where}; allowed: {listed}")
        adjusted.append(f"{param}={old}->{'(dropped)' if new is None else new}")
        return new

    n = params.get("n", 1)
    if n is None:
        n = 1
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise BadParam("n", f"Invalid `n` {n!r}: expected a whole number of images, at least 1")
    fmt = params.get("response_format")
    if fmt is not None and fmt not in RESPONSE_FORMATS:
        raise BadParam("response_format", f"Invalid `response_format` {fmt!r}: expected 'url' or 'b64_json'")

    req: GenerationRequest
    if editing:
        req = EditRequest(prompt=params["prompt"], model=model, response_format=fmt, user=params.get("user"))
        _inputs(req, attempt.inbound.form, mc, where)
    else:
        req = GenerationRequest(prompt=params["prompt"], model=model, response_format=fmt, user=params.get("user"))
    allowed = mc.parameters if mc is not None and mc.parameters is not None else caps.parameters
    extra: dict[str, Any] = {}
    unsupported = []
    # The gateway makes the stream of a provider that does not stream: the provider never sees it.
    streamed_here = not caps.streams and any(k in params for k in _STREAM_PARAMS)
    for key, value in params.items():
        if key in UNIFIED or (streamed_here and key in _STREAM_PARAMS):
            continue
        if caps.passes_unknown_parameters or key in allowed:
            extra[key] = value
        else:
            unsupported.append(key)
    unsupported.sort()
    if unsupported and strict:
        raise BadParam(unsupported[0], f"Parameter `{unsupported[0]}` is not supported by {where}")
    adjusted.extend(f"{key}=(dropped)" for key in unsupported)
    req.extra = extra
    if req.user is not None and "user" not in caps.parameters and not caps.passes_unknown_parameters:
        req.user = None  # an end-user id the provider has no field for; not worth a report

    size = params.get("size")
    quality = params.get("quality")
    style = params.get("style")
    for name, value in (("quality", quality), ("style", style)):
        if value is not None and not isinstance(value, str):
            raise BadParam(name, f"Invalid `{name}`: expected a string, got {type(value).__name__}")
    if mc is None:
        # An unknown model: nothing declared to check against, the provider sees what was sent.
        dims = parse_size(size) if size is not None else None
        req.size = size
        if dims:
            req.width, req.height = dims
        req.quality, req.style, req.n = quality, style, n
        return _plan(req, n, fmt, adjusted, per_call=n, rebuilt=streamed_here)

    if n > mc.max_images:
        n = adjust("n", n, mc.max_images, f"1 to {mc.max_images}")
    if size is not None:
        _map_size(req, size, mc, adjust)
    if quality is not None:
        req.quality = _map_choice("quality", quality, mc.qualities, adjust, ranked=True)
    if style is not None:
        req.style = _map_choice("style", style, mc.styles, adjust, ranked=False)
    return _plan(req, n, fmt, adjusted, per_call=mc.max_n, rebuilt=streamed_here)


def _inputs(req: EditRequest, form: list[tuple[str, Any]], mc: ModelCapabilities | None, where: str) -> None:
    """The edit's images and mask, checked against what the model takes."""
    for name, value in form:
        if isinstance(value, InputImage):
            if name == "mask":
                req.mask = value
            else:
                req.images.append(value)
    if mc is None:
        return
    req.mask_edits = mc.mask_edits
    if len(req.images) > mc.input_images:
        raise BadParam("image", f"{where} edits {mc.input_images} image{'s' if mc.input_images != 1 else ''} "
                                f"at most; {len(req.images)} were sent")
    if req.mask is not None and not mc.mask:
        raise BadParam("mask", f"`mask` is not supported by {where}")
    if req.mask is None and mc.needs_mask:
        raise BadParam("mask", f"{where} needs a `mask`: the area to change, white where it changes")


def drop_size(attempt: Attempt, req: GenerationRequest, where: str, why: str) -> GenerationRequest:
    """``req`` without its ``size``, for a model (or task) whose output size is not chosen (an edit
    that keeps the input's size): reported in lenient mode, a 400 saying ``why`` in strict mode.
    ``auto``, or no size, is what such a model does anyway."""
    if req.width is None:
        return req
    asked = attempt.params.get("size", req.size)
    if attempt.strict_params:
        raise BadParam("size", f"`size` {asked!r} is not supported by {where}: {why}")
    assert attempt.plan is not None  # called while building from a negotiated plan
    attempt.plan.report(f"size={asked}->(dropped)", replacing="size=")
    return msgspec.structs.replace(req, size=None, width=None, height=None)


def _map_size(req: GenerationRequest, size: Any, mc: ModelCapabilities, adjust: Any) -> None:
    dims = parse_size(size)
    if dims is None:  # "auto"
        if "auto" in mc.sizes or mc.auto_size:
            req.size = size
        else:  # the provider's own default size is its "auto"
            adjust("size", size, None, mc.sizes or mc.aspect_ratios or "WIDTHxHEIGHT")
        return
    w, height = dims
    if mc.aspect_ratios:
        ratio = nearest_ratio(w, height, mc.aspect_ratios)
        if abs(ratio_of(ratio) - w / height) > 0.01 * ratio_of(ratio):
            ratio = adjust("size", size, ratio, [*mc.aspect_ratios])
        req.aspect_ratio = ratio
        return
    if mc.sizes:
        if f"{w}x{height}" not in mc.sizes:
            new = adjust("size", size, nearest_size(w, height, mc.sizes), mc.sizes)
            w, height = (int(x) for x in new.split("x"))
    elif mc.min_side or mc.max_side:
        nw, nh = _fit(w, height, mc)
        if (nw, nh) != (w, height):
            rule = f"sides {mc.min_side or 1} to {mc.max_side or 'any'}"
            if mc.side_multiple > 1:
                rule += f" in multiples of {mc.side_multiple}"
            if mc.max_ratio:
                rule += f", sides at most {mc.max_ratio:g}:1"
            if mc.max_pixels:
                rule += f", at most {mc.max_pixels} pixels"
            adjust("size", size, f"{nw}x{nh}", rule)
            w, height = nw, nh
    req.size, req.width, req.height = f"{w}x{height}", w, height


def _fit(w: int, height: int, mc: ModelCapabilities) -> tuple[int, int]:
    """Scale into the side and pixel limits keeping the shape, then round each side
    to the model's multiple (only a shape no limit allows is bent)."""
    if mc.max_ratio and max(w, height) > mc.max_ratio * min(w, height):
        # Too long a shape: the long side is cut to the ratio, keeping the short one.
        if w > height:
            w = int(mc.max_ratio * height)
        else:
            height = int(mc.max_ratio * w)
    k = 1.0
    if mc.max_side and max(w, height) > mc.max_side:
        k = mc.max_side / max(w, height)
    if mc.max_pixels and w * height * k * k > mc.max_pixels:
        k = min(k, math.sqrt(mc.max_pixels / (w * height)))
    if k == 1.0:
        if mc.min_side and min(w, height) < mc.min_side:
            k = mc.min_side / min(w, height)
        if mc.min_pixels and w * height * k * k < mc.min_pixels:
            k = max(k, math.sqrt(mc.min_pixels / (w * height)))
    m = mc.side_multiple
    lo = math.ceil((mc.min_side or 1) / m) * m
    hi = (mc.max_side // m * m) if mc.max_side else None

    def side(x: float, how: Any) -> int:
        v = max(how(x / m) * m, lo)
        return min(v, hi) if hi else v

    nw, nh = side(w * k, round), side(height * k, round)
    if mc.max_pixels and nw * nh > mc.max_pixels:
        nw, nh = side(w * k, math.floor), side(height * k, math.floor)
    elif mc.min_pixels and nw * nh < mc.min_pixels:
        nw, nh = side(w * k, math.ceil), side(height * k, math.ceil)
    while mc.max_ratio and max(nw, nh) > mc.max_ratio * min(nw, nh) and max(nw, nh) - m >= lo:
        # Rounding can tip a shape at the limit over it: one multiple off the long side.
        if nw > nh:
            nw -= m
        else:
            nh -= m
    return nw, nh


def _map_choice(param: str, value: Any, allowed: Sequence[str] | None, adjust: Any, ranked: bool) -> str | None:
    if allowed is None or value in allowed:  # None: the model takes values the gateway does not list
        return value
    if not allowed:
        return adjust(param, value, None, "none (not supported)")
    if ranked and value in _QUALITY_RANK:
        want = _QUALITY_RANK[value]
        ranked_allowed = [a for a in allowed if a in _QUALITY_RANK]
        if ranked_allowed:
            best = min(ranked_allowed, key=lambda a: (abs(_QUALITY_RANK[a] - want), -_QUALITY_RANK[a]))
            return adjust(param, value, best, allowed)
    return adjust(param, value, None, allowed)


def _plan(req: GenerationRequest, n: int, fmt: str | None, adjusted: list[str], per_call: int,
          rebuilt: bool = False) -> GenerationPlan:
    parts = []
    done = 0
    seed = req.extra.get("seed")
    while done < n:
        take = min(per_call, n - done)
        part = msgspec.structs.replace(req, n=take, offset=done, extra=dict(req.extra))
        if done and isinstance(seed, int) and not isinstance(seed, bool) and seed:
            # Same seed, same image: each further call starts where the previous left off.
            part.extra["seed"] = seed + done
        parts.append(part)
        done += take
    changed = bool(adjusted) or len(parts) > 1 or rebuilt
    for part in parts:
        part.changed = changed
    return GenerationPlan(parts=parts, n=n, response_format=fmt, adjusted=adjusted)
