"""Page views counted per page in ten-second tumbling windows.

    sabot -A examples.faust.page_views:app worker -l info
    sabot -A examples.faust.page_views:app send page_views \
        '{"id": "/home", "user": "ada", "timestamp": 1700000000.5}'

Page views arrive keyed by user; ``group_by(PageView.id)`` repartitions them
by page through the topic ``page-views-count_page_views-PageView.id-repartition``
so each page's windows live in one table partition. The window of a view is
taken from its ``timestamp`` field (event time), and every update publishes
the page's count in that window to ``page-view-counts``.
"""

import os
from datetime import timedelta

import sabot as faust

BROKER = os.environ.get("SABOT_BROKER", "kafka://127.0.0.1:19092")
SUFFIX = os.environ.get("SABOT_EXAMPLE_SUFFIX", "")
WINDOW = 10.0  # seconds


class PageView(faust.Record):
    id: str
    user: str
    timestamp: float


app = faust.App(f"page-views{SUFFIX}", broker=BROKER, topic_partitions=4)

page_view_topic = app.topic(f"page_views{SUFFIX}", key_type=str, value_type=PageView)
counts_topic = app.topic(f"page-view-counts{SUFFIX}", key_type=str)

page_views = (
    app.Table("page_views", default=int)
    .tumbling(WINDOW, expires=timedelta(hours=1))
    .relative_to_field(PageView.timestamp)
)


@app.agent(page_view_topic)
async def count_page_views(views):
    async for view in views.group_by(PageView.id):
        page_views[view.id] += 1
        window_start = view.timestamp // WINDOW * WINDOW
        await counts_topic.send(
            key=view.id,
            value={"page": view.id, "window": window_start, "views": page_views[view.id].current()},
        )


if __name__ == "__main__":
    app.main()
