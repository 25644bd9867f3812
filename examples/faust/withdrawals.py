"""Withdrawals: per-user sums in one-minute tumbling windows.

    sabot -A examples.faust.withdrawals:app worker -l info
    sabot -A examples.faust.withdrawals:app send withdrawals --key ada \
        '{"user": "ada", "country": "NO", "amount": 12.5, "date": "2024-01-01T12:00:30+00:00"}'

Withdrawals arrive keyed by user, so the table is co-partitioned with the
topic. The window of a withdrawal comes from its ``date`` field, so
withdrawals may arrive out of order: a window stays open until the table's
time (the latest withdrawal date it has seen) is ten minutes past the
window's start (``expires``). Then it closes and its final sum goes to
``withdrawal-totals`` (one message per user and minute); a withdrawal that
arrives later than that is counted in ``user_to_total.late_updates``.
Withdrawals of 1000 or more are also reported on ``large-withdrawals`` as they
arrive.
"""

import os
from datetime import UTC, datetime, timedelta

import sabot as faust

BROKER = os.environ.get("SABOT_BROKER", "kafka://127.0.0.1:19092")
SUFFIX = os.environ.get("SABOT_EXAMPLE_SUFFIX", "")
LARGE = 1000.0


class Withdrawal(faust.Record, isodates=True, serializer="json"):
    user: str
    country: str
    amount: float
    date: datetime


app = faust.App(f"withdrawals{SUFFIX}", broker=BROKER, topic_partitions=4)

withdrawals_topic = app.topic(f"withdrawals{SUFFIX}", key_type=str, value_type=Withdrawal)
totals_topic = app.topic(f"withdrawal-totals{SUFFIX}", key_type=str)
large_topic = app.topic(f"large-withdrawals{SUFFIX}", key_type=str, value_type=Withdrawal)


def publish_total(key, total):
    user, (start, _end) = key
    window = datetime.fromtimestamp(start, UTC).isoformat()
    totals_topic.send_soon(key=user, value={"user": user, "window": window, "total": total})


user_to_total = (
    app.Table("user_to_total", default=float, on_window_close=publish_total)
    .tumbling(timedelta(minutes=1), expires=timedelta(minutes=10))
    .relative_to_field(Withdrawal.date)
)


@app.agent(withdrawals_topic)
async def track_user_withdrawal(withdrawals):
    async for withdrawal in withdrawals:
        user_to_total[withdrawal.user] += withdrawal.amount
        if withdrawal.amount >= LARGE:
            await large_topic.send(key=withdrawal.user, value=withdrawal)


if __name__ == "__main__":
    app.main()
