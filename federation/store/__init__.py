"""Persistence: SQLAlchemy models, the database, pagination and migrations."""

from federation.store.database import Store
from federation.store.pagination import Page, PageRequest

__all__ = ["Page", "PageRequest", "Store"]
