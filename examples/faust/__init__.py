"""Faust-style example apps on Sabot (``import sabot as faust``).

Each runs with ``sabot -A examples.faust.<name>:app worker -l info`` from the
repository root against the broker at ``SABOT_BROKER`` (default
``kafka://127.0.0.1:19092``, ``make kafka-up``):

- ``hello_world``: an agent printing greetings.
- ``word_count``: posts split into words, counted in a table, served over HTTP.
- ``page_views``: page views repartitioned by page into a tumbling table.
- ``withdrawals``: per-user withdrawal sums in one-minute windows, final sums
  published when a window closes.
- ``ask``: an agent that calls another with ``ask`` and waits for its reply.

``SABOT_EXAMPLE_SUFFIX`` is appended to app ids and topic names so that
tests (tests/python/faust/test_examples.py) run each example on fresh topics.
"""
