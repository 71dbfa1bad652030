"""Predicting offline whether a cloud will accept a token, and explaining why not.

One module per cloud (``aws``, ``gcp``, ``azure``), each with ``evaluate(...)`` returning
an :class:`~federation.policy.result.Evaluation`, and ``suggest(...)`` for the narrowest
policy that admits a given subject.
"""
