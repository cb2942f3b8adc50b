"""Azure OpenAI URLs: the resource's ``/openai`` root, the generations and edits
endpoints of a deployment (dated API) or of the v1 API, and passthrough paths.

Azure's dated API puts the deployment in the path and wants ``api-version`` in
the query: ``/openai/deployments/{deployment}/images/generations?api-version=...``
(and ``.../images/edits``).  The v1 API is OpenAI's shape under ``/openai/v1``
with the deployment name as the body's ``model`` and no ``api-version``.
"""
from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, urlencode

from gateway.sdk import BadRequest
from gateway_azure_openai.options import (
    DEFAULT_API_VERSION,
    V1_VERSIONS,
    AzureOpenAIOptions,
)

__all__ = [
    "GPT_IMAGE_SINCE", "RESOURCE_PLACEHOLDER", "api_root", "dated_before", "images_url", "is_v1", "proxy_url",
    "require_deployment",
]

RESOURCE_PLACEHOLDER = "{resource_name}"
#: The first dated API version with the GPT image models, their edit endpoint and streaming
#: (``2025-04-01-preview``; the images API reference documents no earlier one with them).
GPT_IMAGE_SINCE = "2025-04-01"
_DATED = re.compile(r"(\d{4}-\d{2}-\d{2})(?:-preview)?")
#: Passthrough paths Azure serves per deployment: ``/images/edits`` -> ``/openai/deployments/{d}/images/edits``.
_PER_DEPLOYMENT = ("/images/", "/audio/", "/chat/completions", "/completions", "/embeddings")


def api_root(base_url: str, options: AzureOpenAIOptions) -> str:
    """The ``.../openai`` root for these options: ``base_url`` with the resource name filled in."""
    if RESOURCE_PLACEHOLDER not in base_url:
        return base_url
    if not options.resource_name:
        raise BadRequest(
            "azure-openai needs the Azure OpenAI resource name: send the x-portkey-azure-resource-name header, "
            "or set `resource_name` on the config target or virtual key",
            param="x-portkey-azure-resource-name", code="missing_provider_option", provider="azure-openai",
        )
    return base_url.replace(RESOURCE_PLACEHOLDER, options.resource_name)


def is_v1(options: AzureOpenAIOptions, default_version: str) -> bool:
    """Whether these options select Azure's v1 API."""
    return (options.api_version or default_version) in V1_VERSIONS


def dated_before(options: AzureOpenAIOptions, default_version: str, since: str) -> bool:
    """Whether these options select a dated API version older than ``since`` (``YYYY-MM-DD``);
    False for the v1 API and for a version that is not a date (Azure judges those)."""
    dated = _DATED.fullmatch(options.api_version or default_version)
    return dated is not None and dated.group(1) < since


def require_deployment(options: AzureOpenAIOptions, fallback: str | None = None) -> str:
    """The deployment name, or a 400 naming where to give it."""
    deployment = options.deployment_id or fallback
    if not deployment:
        raise BadRequest(
            "azure-openai needs the deployment to call: send the x-portkey-azure-deployment-id header, "
            "or set `deployment_id` on the config target or virtual key",
            param="x-portkey-azure-deployment-id", code="missing_provider_option", provider="azure-openai",
        )
    return deployment


def images_url(base_url: str, options: AzureOpenAIOptions, default_version: str, operation: str) -> str:
    """Where an images ``operation`` (``generations``, ``edits``) goes: the deployment's
    endpoint, or the v1 API's."""
    root = api_root(base_url, options)
    version = options.api_version or default_version
    if version in V1_VERSIONS:
        query = V1_VERSIONS[version]
        return f"{root}/v1/images/{operation}" + (f"?{urlencode({'api-version': query})}" if query else "")
    deployment = quote(require_deployment(options), safe="")
    return f"{root}/deployments/{deployment}/images/{operation}?{urlencode({'api-version': version})}"


def proxy_url(base_url: str, options: AzureOpenAIOptions, default_version: str, path: str,
              query_string: str) -> str:
    """The Azure URL for passthrough ``/v1{path}``.

    - ``/openai/...`` is Azure's own path, kept as it is below the resource;
    - with the v1 API selected, an OpenAI-shaped path goes below ``/openai/v1``;
    - otherwise a per-deployment path (``/images/edits``, ...) goes below the
      deployment, and anything else (``/models``, ``/files``) below ``/openai``.

    The client's query is kept; ``api-version`` is added when it is missing and
    the path wants one (the v1 API wants none, unless ``preview``).
    """
    root = api_root(base_url, options)
    version = options.api_version or default_version
    if path == "/openai" or path.startswith("/openai/"):
        rest = path[len("/openai"):]
    elif version in V1_VERSIONS:
        rest = "/v1" + path
    elif path.startswith(_PER_DEPLOYMENT):
        rest = f"/deployments/{quote(require_deployment(options), safe='')}{path}"
    else:
        rest = path
    if rest == "/v1" or rest.startswith("/v1/"):
        wanted = V1_VERSIONS.get(version)
    elif version not in V1_VERSIONS:
        wanted = version
    else:  # the v1 API selected, yet a dated path asked for: the settings' dated version
        wanted = default_version if default_version not in V1_VERSIONS else DEFAULT_API_VERSION
    if wanted and "api-version" not in {k for k, _ in parse_qsl(query_string, keep_blank_values=True)}:
        added = urlencode({"api-version": wanted})
        query_string = f"{query_string}&{added}" if query_string else added
    url = root + rest
    return f"{url}?{query_string}" if query_string else url
