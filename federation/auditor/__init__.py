"""The transparency log's auditors: the parties that do not trust the issuer's operators
and check its log from outside, over HTTP.

- :mod:`~federation.auditor.remote`: reading a log over HTTP: its checkpoint, tiles,
  entry bundles and proofs, and where the issuer's discovery document says it is.
- :mod:`~federation.auditor.monitor`: the monitor: each run checks the newest signed
  checkpoint against the last one it saw, reads every new entry and reports those its
  rules flag (:mod:`~federation.auditor.rules`), keeping what it saw in a state file
  (:mod:`~federation.auditor.state`).
- :mod:`~federation.auditor.inclusion`: a token's inclusion under a checkpoint the log's
  key (and, when asked, witnesses) signed: ``log prove`` and ``verify --require-logged``.
- :mod:`~federation.auditor.pinning`: which log key to trust (given, kept by a monitor,
  or, on first use only, the discovery document's).
- :mod:`~federation.auditor.witness` and :mod:`~federation.auditor.witness_push`: a
  C2SP ``tlog-witness`` that cosigns the checkpoints it checked, and pushing a
  checkpoint to one.
- :mod:`~federation.auditor.witness`: a C2SP ``tlog-witness`` (``log witness``), run
  by another party: it cosigns each checkpoint that extends the last one it cosigned
  (kept in :mod:`~federation.auditor.witness_state`);
  :mod:`~federation.auditor.witness_push` has it cosign a log's newest checkpoint.

Everything these modules check is checked here, with the log's pinned key, never
taken from the issuer's word; a failed check raises
:class:`~federation.errors.LogVerificationFailed`.
"""
