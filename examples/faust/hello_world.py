"""Hello world: an agent that greets everyone who arrives on a topic.

    sabot -A examples.faust.hello_world:app worker -l info
    sabot -A examples.faust.hello_world:app send greetings Ada

Apart from the import and the settings read from the environment, this is
Faust's hello world.
"""

import os

import sabot as faust

BROKER = os.environ.get("SABOT_BROKER", "kafka://127.0.0.1:19092")
SUFFIX = os.environ.get("SABOT_EXAMPLE_SUFFIX", "")

app = faust.App(f"hello-world{SUFFIX}", broker=BROKER, value_serializer="raw")

greetings_topic = app.topic(f"greetings{SUFFIX}", value_type=str)


@app.agent(greetings_topic)
async def greet(greetings):
    async for greeting in greetings:
        name = greeting.decode() if isinstance(greeting, bytes) else greeting
        print(f"Hello, {name}!", flush=True)


if __name__ == "__main__":
    app.main()
