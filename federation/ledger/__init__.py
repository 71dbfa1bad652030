"""The transparency log as the issuer serves it: checkpoints signed with the log's key,
tiles, entry bundles and proofs read from the database.

Entries are appended by the audit batches (``federation.store.issuing.log_append``);
the formats and proofs are the transparency library's (``federation.transparency``).
"""

from __future__ import annotations

from federation.ledger.service import Ledger, Served, sign_forever

__all__ = ["Ledger", "Served", "sign_forever"]
