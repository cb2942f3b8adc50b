"""The web UI at ``/ui``: the request log's list, detail pages and a dashboard, served by the
gateway itself (server-rendered HTML, one stylesheet, one small script; no build step).

:mod:`.html` escapes and fills the templates, :mod:`.session` signs the login session and
its CSRF tokens, :mod:`.filters` turns the list's query string into a
:class:`~gateway.requestlog.store.LogQuery`, :mod:`.charts` draws the dashboard's SVG,
:mod:`.pages` renders each page from records, :mod:`.views` holds the aiohttp handlers.
The built-in plugin :mod:`gateway.defaults.ui` adds the routes.
"""
