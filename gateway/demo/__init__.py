"""``gateway demo``: the gateway with a built-in image provider that needs no key.

:mod:`.api` is the demo's own image service (OpenAI's images API, real PNGs from
:mod:`.pictures`, simulated latency and failures), :mod:`.provider` the ``demo`` provider that
talks to it, :mod:`.plugin` registers that provider and runs the service for the app's
lifetime, :mod:`.settings` adds the demo's settings to the operator's, and :mod:`.banner` is
what the command prints.  Only ``gateway demo`` registers the plugin (docs/demo.md).
"""
