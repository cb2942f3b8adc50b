"""An OpenAI-shaped edit as the multipart form of one of Stability's edit routes.

The model names the route (:func:`~gateway_stability_ai.models.edit_route_for`):
``inpaint`` (the default), ``erase``, ``outpaint``, ``search-and-replace``,
``search-and-recolor``, ``remove-background``, or image-to-image on ``ultra`` and
the sd3 models.  Everything Stability would refuse for the route's own reasons
(a missing ``search_prompt``/``select_prompt``/``strength``, no outpaint
direction, an image outside its pixel limits, nothing to inpaint) is a 400 here,
before any upstream call.
"""
from __future__ import annotations

from typing import Any

from gateway.sdk import Attempt, BadParam, EditRequest, drop_size
from gateway_stability_ai.images import probe
from gateway_stability_ai.models import (
    DEFAULT_EDIT_MODEL,
    V2_MAX_SEED,
    EditRoute,
    edit_models,
    edit_route_for,
)

#: What each required native field is, for the message naming it.
_REQUIRED = {
    "search_prompt": "a short description of what to find and replace",
    "select_prompt": "a short description of what to find and recolor",
    "strength": "0 to 1, how much the image may change: 0 keeps it, 1 ignores it",
}


def route(req: EditRequest) -> tuple[str, EditRoute]:
    """The edit's model name and its route; a 400 naming ``model`` when it names no Stability edit."""
    model = req.model or DEFAULT_EDIT_MODEL
    found = edit_route_for(model)
    if found is None:
        raise BadParam("model", f"Invalid `model` {model!r} for stability-ai edits: one of "
                                f"{', '.join(edit_models())} (or another sd3 variant)")
    return model, found


def checked(attempt: Attempt, req: EditRequest, model: str, edit: EditRoute) -> EditRequest:
    """``req`` as the route takes it (``size`` dropped), or a 400 for what the route refuses."""
    # No edit route takes a size: the output's size is Stability's (`auto` asks for just that).
    req = drop_size(attempt, req, f"stability-ai model {model!r}",
                    "the edit's size is Stability's, from the input image (send `auto` or no size)")
    _check_fields(req, model, edit)
    _check_image(req, model, edit)
    return req


def fields(req: EditRequest, edit: EditRoute) -> list[tuple[str, Any]]:
    """The form's parts in order: the image, the mask, then the text fields (native ones as given)."""
    out: list[tuple[str, Any]] = [("image", req.images[0])]
    if req.mask is not None:
        out.append(("mask", req.mask))
    if edit.prompt:
        out.append(("prompt", req.prompt))
    if edit.mode is not None:
        out.append(("mode", edit.mode))
    if edit.model_field is not None:
        out.append(("model", edit.model_field))
    natives: dict[str, Any] = {}
    if req.style is not None:
        natives["style_preset"] = req.style
    natives.update(req.extra)  # a native style_preset wins over the mapped style
    if "seed" in natives:
        natives["seed"] = _seed(req)
    out.extend((name, value) for name, value in natives.items() if value is not None)
    return out


def _check_fields(req: EditRequest, model: str, edit: EditRoute) -> None:
    for name in edit.required:
        value = req.extra.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise _missing(name, f"stability-ai model {model!r} needs `{name}` ({_REQUIRED[name]})")
    if edit.one_of and not any(_above_zero(req.extra.get(name)) for name in edit.one_of):
        raise _missing(edit.one_of[0], f"stability-ai model {model!r} needs pixels to add on at least one side: "
                                       f"{', '.join(f'`{n}`' for n in edit.one_of)} (0 to 2000)")
    fmt = req.extra.get("output_format")
    if fmt is not None and fmt not in edit.output_formats:
        raise BadParam("output_format", f"`output_format` {fmt!r} is not supported by stability-ai model "
                                        f"{model!r}; allowed: {', '.join(edit.output_formats)}")


def _check_image(req: EditRequest, model: str, edit: EditRoute) -> None:
    info = probe(req.images[0].data)
    if info is None:  # a header this module cannot read: Stability judges the file itself
        return
    problem = edit.image.problem(info.width, info.height)
    if problem is not None:
        raise BadParam("image", f"stability-ai model {model!r} cannot take this {info.width}x{info.height} "
                                f"image: {problem}")
    if edit.alpha_mask and req.mask is None and not info.alpha:
        raise BadParam("mask", f"stability-ai model {model!r} changes the area a `mask` marks (white: changed, "
                               "black: kept) or, without one, the image's transparent pixels; this image has no "
                               "alpha channel: send a mask or an image with transparency (or, to change the "
                               "whole image, model `sd3.5-large` with `strength`)")


def _missing(param: str, message: str) -> BadParam:
    err = BadParam(param, message)
    err.code = "missing_required_parameter"
    return err


def _above_zero(value: Any) -> bool:
    if value is None:
        return False
    try:
        return float(value) > 0
    except (TypeError, ValueError):
        return True  # not a number: Stability's own 400 names it


def _seed(req: EditRequest) -> Any:
    seed = req.extra["seed"]
    if isinstance(seed, str) and seed.isdigit() and int(seed):
        # A form's seed is text, which the core's split of ``n`` leaves as it is (it moves
        # numbers only): each further call starts where the previous left off here.
        seed = int(seed) + req.offset
    if isinstance(seed, int) and not isinstance(seed, bool) and seed > V2_MAX_SEED:
        seed %= V2_MAX_SEED + 1
    return seed
