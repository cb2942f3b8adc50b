"""The request log: a record per request, kept in a log store, read through ``GET /v1/logs``.

:mod:`.record` holds the record, :mod:`.store` the store interface and its query,
:mod:`.sqlite` the embedded default store, :mod:`.writer` the queue that keeps writes
off the request path, :mod:`.api` the JSON API, :mod:`.admin` the admin key.
"""
