"""An agent that calls another and waits for the answer with ``ask``.

    sabot -A examples.faust.ask:app worker -l info
    sabot -A examples.faust.ask:app send sums-requests '{"id": 1, "x": 2, "y": 40}'

``process`` takes requests from ``sums-requests``, asks the ``add`` agent
for ``x + y`` (the request travels on ``sums-add`` with a reply-to header; the
reply comes back on the app's reply topic) and publishes the answer on
``sums-results``.
"""

import os

import sabot as faust

BROKER = os.environ.get("SABOT_BROKER", "kafka://127.0.0.1:19092")
SUFFIX = os.environ.get("SABOT_EXAMPLE_SUFFIX", "")


class Add(faust.Record):
    x: int
    y: int


class Request(faust.Record):
    id: int
    x: int
    y: int


app = faust.App(f"sums{SUFFIX}", broker=BROKER, topic_partitions=2)

requests_topic = app.topic(f"sums-requests{SUFFIX}", value_type=Request)
results_topic = app.topic(f"sums-results{SUFFIX}")
add_topic = app.topic(f"sums-add{SUFFIX}", value_type=Add)


@app.agent(add_topic)
async def add(stream):
    async for op in stream:
        yield op.x + op.y


@app.agent(requests_topic)
async def process(requests):
    async for req in requests:
        total = await add.ask(Add(x=req.x, y=req.y))
        await results_topic.send(key=str(req.id), value={"id": req.id, "sum": total})


if __name__ == "__main__":
    app.main()
