"""The multipart form of ``POST /v1/images/edits``: read once with aiohttp's own reader, within limits.

:func:`read_edit_form` turns the body into the form's parts in the order sent
(text fields as strings, files as :class:`~gateway.generation.InputImage` with
their bytes untouched) and the typed parameters the pipeline negotiates.  Every
problem is a 400 naming it, before any provider is called: a body that is not
multipart or is cut short, too many parts, a file over its limit, a file that
is not an image, a missing ``image`` or ``prompt``, more images than allowed.
"""
from __future__ import annotations

import asyncio
import hashlib
import io
from typing import Any

from aiohttp import MultipartReader, MultipartWriter, StreamReader, payload
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.base_protocol import BaseProtocol
from multidict import CIMultiDict

from gateway.errors import BadRequest, PayloadTooLarge
from gateway.generation import InputImage
from gateway.images.sniff import sniff
from gateway.settings import ImagesSettings

#: Fields OpenAI documents as files; any other file part is refused.
IMAGE_FIELDS = frozenset({"image", "image[]", "mask"})
#: Media types an edit takes (OpenAI: png, webp, jpg).
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp"})
#: Text fields that carry numbers or booleans (a form sends every value as text); ``seed``
#: is every image API's, and a number lets a split edit advance it per call.
_INTS = frozenset({"n", "partial_images", "output_compression", "seed"})
_BOOLS = frozenset({"stream"})
#: Files from this size are hashed in a thread (about a millisecond of hashing).
_HASH_IN_THREAD = 1024 * 1024


#: A text field's bytes at most (a prompt of 32,000 characters is at most 128 KiB of UTF-8).
MAX_FIELD_BYTES = 128 * 1024


async def read_edit_form(body: bytes, content_type: str,
                         limits: ImagesSettings) -> tuple[list[tuple[str, Any]], dict[str, Any]]:
    """``(parts, params)``: the form's parts in order, and its text fields typed
    (``n`` as a number, ``stream`` as a boolean; ``image`` and ``mask`` are not params),
    within the ``[images]`` limits (``max_form_parts``, ``max_input_images``,
    ``max_input_file_bytes``)."""
    if "boundary=" not in content_type:
        raise BadRequest("The multipart body has no boundary in its Content-Type", param="content-type",
                         code="invalid_multipart")
    reader = MultipartReader(CIMultiDict({"Content-Type": content_type}), _stream_of(body),
                             max_field_size=8190, max_headers=32)
    parts: list[tuple[str, Any]] = []
    images = 0
    try:
        while True:
            part = await reader.next()
            if part is None:
                break
            if isinstance(part, MultipartReader):
                raise BadRequest("A nested multipart part is not a form field", code="invalid_multipart")
            if len(parts) >= limits.max_form_parts:
                raise BadRequest(f"The form has more than {limits.max_form_parts} parts", code="too_many_parts")
            name = part.name
            if not name:
                raise BadRequest("A form part has no name", code="invalid_multipart")
            if part.filename is not None or name in IMAGE_FIELDS:
                if name not in IMAGE_FIELDS:
                    raise BadRequest(f"Unexpected file in form field `{name}`: images go in `image`, `image[]` "
                                     "or `mask`", param=name, code="invalid_parameter")
                data = await _read_part(part, limits.max_input_file_bytes, name, "file")
                media_type = sniff(data)
                if media_type not in IMAGE_TYPES:
                    raise BadRequest(f"The file in `{name}` ({part.filename or 'no name'}) is not a PNG, JPEG or "
                                     "WebP image", param=name, code="invalid_image")
                if name != "mask":
                    images += 1
                    if images > limits.max_input_images:
                        raise BadRequest(f"Too many images: at most {limits.max_input_images} in one edit",
                                         param="image", code="too_many_images")
                elif any(n == "mask" for n, _ in parts):
                    raise BadRequest("Only one `mask` may be sent", param="mask", code="invalid_parameter")
                parts.append((name, InputImage(field=name, data=data, media_type=media_type,
                                               filename=part.filename, content_type=part.headers.get("Content-Type"),
                                               digest=await _digest(data))))
            else:
                raw = await _read_part(part, MAX_FIELD_BYTES, name, "field")
                try:
                    parts.append((name, raw.decode(part.get_charset("utf-8"))))
                except (UnicodeDecodeError, LookupError):
                    raise BadRequest(f"Form field `{name}` is not valid UTF-8 text", param=name,
                                     code="invalid_parameter") from None
    except (ValueError, AssertionError, asyncio.IncompleteReadError, RuntimeError, HttpProcessingError) as e:
        # aiohttp's reader says what is wrong (a missing boundary, a cut-short body, a bad header).
        raise BadRequest(f"Malformed multipart body (cut short, or not split by the boundary its Content-Type "
                         f"names): {e or e.__class__.__name__}", code="invalid_multipart") from None
    return parts, _params(parts, images)


async def _read_part(part: Any, limit: int, name: str, what: str) -> bytes:
    out = bytearray()
    while True:
        chunk = await part.read_chunk(256 * 1024)
        if not chunk:
            return bytes(out)
        out += chunk
        if len(out) > limit:
            raise PayloadTooLarge(f"The {what} in `{name}` is over the limit of {limit} bytes", param=name)
        # The body is already in memory, so the reader never waits: let other requests run.
        await asyncio.sleep(0)


async def _digest(data: bytes) -> bytes:
    """SHA-256 of an uploaded file; a large one in a thread (hashlib lets go of the GIL)."""
    if len(data) < _HASH_IN_THREAD:
        return hashlib.sha256(data).digest()
    return await asyncio.to_thread(lambda: hashlib.sha256(data).digest())


def _params(parts: list[tuple[str, Any]], images: int) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, value in parts:
        if not isinstance(value, str):
            continue
        if name in params:
            raise BadRequest(f"Form field `{name}` is sent more than once", param=name, code="invalid_parameter")
        params[name] = _typed(name, value)
    if not images:
        raise BadRequest("Missing required parameter: `image` (one file, or several as `image[]`)", param="image",
                         code="missing_required_parameter")
    prompt = params.get("prompt")
    if prompt is None:
        raise BadRequest("Missing required parameter: `prompt`", param="prompt", code="missing_required_parameter")
    if not prompt.strip():
        raise BadRequest("`prompt` must not be empty", param="prompt", code="missing_required_parameter")
    return params


def _typed(name: str, value: str) -> Any:
    if name in _INTS:
        try:
            return int(value)
        except ValueError:
            raise BadRequest(f"Invalid `{name}` {value!r}: expected a whole number", param=name,
                             code="invalid_parameter") from None
    if name in _BOOLS:
        low = value.strip().lower()
        if low in ("true", "1"):
            return True
        if low in ("false", "0", ""):
            return False
        raise BadRequest(f"Invalid `{name}` {value!r}: expected true or false", param=name,
                         code="invalid_parameter")
    return value


def form_value(value: Any) -> str:
    """A parameter as a form sends it (``true``, ``2``, text as it is)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


async def build_form(fields: list[tuple[str, Any]]) -> tuple[bytes, str]:
    """``(body, content type)`` of a multipart form of ``fields`` in order: text as UTF-8,
    each :class:`InputImage` with its own bytes, file name and media type."""
    writer = MultipartWriter("form-data")
    for name, value in fields:
        if isinstance(value, InputImage):
            # A reader over the bytes, not the bytes: aiohttp warns of (and writes whole) large raw bodies.
            part = writer.append_payload(payload.BytesIOPayload(io.BytesIO(value.data), content_type=value.media_type))
            part.set_content_disposition("form-data", name=name, filename=value.filename or _filename(value))
        else:
            part = writer.append_payload(payload.StringPayload(form_value(value), content_type="text/plain"))
            part.set_content_disposition("form-data", name=name)
    return await writer.as_bytes(), writer.content_type


def _filename(image: InputImage) -> str:
    return "image." + image.media_type.partition("/")[2]


def _stream_of(body: bytes) -> StreamReader:
    """The body already read, as the stream aiohttp's reader parses (its limit above the body's
    size: a stream fed past twice its limit asks its protocol to pause, and this one has none)."""
    stream = StreamReader(BaseProtocol(asyncio.get_running_loop()), limit=max(2**16, len(body)))
    stream.feed_data(body)
    stream.feed_eof()
    return stream
