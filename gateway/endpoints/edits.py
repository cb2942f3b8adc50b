"""``POST /v1/images/edits``: an edit runs as a generation does, with input images.

The handler reads the multipart form once (:mod:`gateway.forms`: aiohttp's reader,
with limits) into ``inbound.form`` (the parts in order, files untouched) and
``inbound.params`` (the text fields, typed).  From there the pipeline is the one of
:mod:`gateway.endpoints.generations`, step for step: one cache lookup per request
(the key covers each image's and the mask's bytes by hash, in order), the routing
tree, and per attempt:

1. negotiate against the model's *edit* capabilities (``Capabilities.edit_models``,
   ``edit_families``): how many images it takes, whether it takes or needs a mask,
   then sizes, ``n`` and the rest as for a generation; an OpenAI mask (transparent
   where the image changes) is turned into the black-and-white mask the model
   declares (``mask_edits``: white or black where it changes);
2. build: ``provider.build_edit`` for each part (OpenAI-style APIs forward the
   client's multipart byte for byte when nothing changed, else rebuild it with
   every file part as sent; other APIs translate into their own shape);
3. transform, authorize, send and parse (``parse_generation`` reads the answer),
   deliver in the asked ``response_format``; ``stream: true`` as for generations.

The form is held in memory for the whole request (the raw body for a byte-for-byte
forward, and each file once more as parsed): about twice the upload, bounded by
``server.max_body_bytes`` and ``[images] max_input_file_bytes``.  A retry or a
fallback re-sends from it, so nothing is read twice from the client.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.context import IMAGES_EDITS
from gateway.endpoints.generations import Generations
from gateway.generation import EditRequest
from gateway.images.masks import mask_for

if TYPE_CHECKING:  # pragma: no cover
    from gateway.attempt import Attempt
    from gateway.generation import GenerationPlan


class Edits(Generations):
    name = IMAGES_EDITS
    event_kind = "image_edit"

    async def prepare(self, plan: GenerationPlan) -> None:
        """A client's OpenAI mask (transparent where the image changes) in the convention the
        model declares (``mask_edits``), converted once for every part of a split."""
        first = plan.parts[0]
        assert isinstance(first, EditRequest)
        if first.mask is None or first.mask_edits == "transparent":
            return
        mask = await mask_for(first.mask, "white" if first.mask_edits == "white" else "black")
        if mask is first.mask:  # already the model's own
            return
        for part in plan.parts:
            assert isinstance(part, EditRequest)
            part.mask = mask
            part.changed = True  # the client's bytes no longer say what goes upstream

    def build(self, attempt: Attempt, part: EditRequest) -> Any:  # type: ignore[override]
        return attempt.provider.build_edit(attempt, part)
