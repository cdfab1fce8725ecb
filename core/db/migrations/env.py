"""Alembic environment: the engine comes from core.db.migrate (never from an ini file)."""

from __future__ import annotations

from alembic import context

from core.db.engine import get_engine
from core.db.models import Base

config = context.config
engine = config.attributes.get("engine") or get_engine()

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
