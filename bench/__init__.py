"""Benchmarks (``make bench``). Every ``bench/bench_*.py`` module is run in turn.

A module exposes ``run() -> list[dict]``; each dict is one result row with at least ``name``,
``value`` and ``unit``, and where a same-process reference exists, ``reference`` and ``ratio``
(ours / reference; below 1.0 means faster than the reference). A row that measures one of issue 20's
figures states its target apart (``bench/targets.py``: ``target`` or ``target_ratio``, ``target_met``);
a target, a budget or a spec's limit is never a ``reference``. Results go to
``bench-results.json`` (git-ignored) and a table on stdout. Benchmarks measure; they never fail a
build on wall-clock time, because our machines are shared and noisy.
"""
