"""The experiment store: SQLAlchemy over SQLite by default, migrated with Alembic."""

from aicodec.store.db import Store, head_revision, normalise_url
from aicodec.store.models import BaselineEncode, ClipRecord, RatePointChoice

__all__ = [
    "BaselineEncode",
    "ClipRecord",
    "RatePointChoice",
    "Store",
    "head_revision",
    "normalise_url",
]
