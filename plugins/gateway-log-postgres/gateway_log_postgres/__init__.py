"""The ``postgres`` request-log store: ``[request_log] store = "postgres"``, connected as
``[log_postgres]`` says.  Every gateway instance pointed at one database shares one log."""
from __future__ import annotations

from gateway.sdk import hookimpl
from gateway_log_postgres.store import PostgresLogStore, PostgresSettings

__version__ = "0.1.0"
__all__ = ["PostgresLogStore", "PostgresSettings"]


@hookimpl
def gateway_register_config_sections() -> dict[str, type]:
    return {"log_postgres": PostgresSettings}


@hookimpl
def gateway_register_log_stores() -> list[type]:
    return [PostgresLogStore]
