"""Word count: posts are split into words, which are counted in a table.

    sabot -A examples.faust.word_count:app worker -l info --web-port 6066
    sabot -A examples.faust.word_count:app send posts '"the cat and the hat"'
    curl localhost:6066/count/the/

``shuffle_words`` sends every word to ``count_words`` keyed by the word, so
each word's count lives in one partition of the table (Faust's
co-partitioning); the table's changelog topic
``word-counts-word_counts-changelog`` holds the counts for recovery. A page on
the worker's web server reads the table.
"""

import os

import sabot as faust

BROKER = os.environ.get("SABOT_BROKER", "kafka://127.0.0.1:19092")
SUFFIX = os.environ.get("SABOT_EXAMPLE_SUFFIX", "")

app = faust.App(f"word-counts{SUFFIX}", broker=BROKER, topic_partitions=4)

posts_topic = app.topic(f"posts{SUFFIX}", value_type=str)
word_counts = app.Table("word_counts", default=int, help="Count of each word (str to int).")


@app.agent(posts_topic)
async def shuffle_words(posts):
    async for post in posts:
        for word in post.split():
            await count_words.send(key=word, value=word)


@app.agent(value_type=str)
async def count_words(words):
    """Counts words by the key they arrive with."""
    async for word in words:
        word_counts[word] += 1


@app.page("/count/{word}/")
async def get_count(web, request, word):
    return web.json({word: word_counts[word]})


if __name__ == "__main__":
    app.main()
