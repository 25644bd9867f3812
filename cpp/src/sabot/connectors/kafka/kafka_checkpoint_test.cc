// Checkpoints of the Kafka connectors against a real broker (SABOT_KAFKA_BOOTSTRAP,
// default 127.0.0.1:19092), driven through the operator hooks with an in-memory
// snapshot: source offsets restored at another parallelism, the exactly-once
// sink's two-phase commit across simulated crashes (an instance dropped after
// SnapshotState, before or after NotifyCheckpointComplete), rescaling, and
// zombie fencing. Output is read back with independent read_committed and
// read_uncommitted consumers. Skipped without a broker unless
// SABOT_REQUIRE_KAFKA=1.
#include <arpa/inet.h>
#include <arrow/api.h>
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <future>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "sabot/connectors/kafka/kafka_client.h"
#include "sabot/connectors/kafka/kafka_sink.h"
#include "sabot/connectors/kafka/kafka_source.h"
#include "sabot/connectors/kafka/kafka_transactions.h"
#include "sabot/exec/source.h"
#include "sabot/plan/registry.h"
#include "sabot/state/snapshot.h"

namespace sabot::kafka {
namespace {

std::string Bootstrap() {
  const char* env = std::getenv("SABOT_KAFKA_BOOTSTRAP");
  return env && *env ? env : "127.0.0.1:19092";
}

bool BrokerUp() {
  const std::string b = Bootstrap();
  const auto colon = b.rfind(':');
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::stoi(b.substr(colon + 1))));
  if (inet_pton(AF_INET, b.substr(0, colon).c_str(), &addr.sin_addr) != 1) return false;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  bool up = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return up;
}

#define REQUIRE_BROKER()                                                            \
  do {                                                                              \
    if (!BrokerUp()) {                                                              \
      const char* req = std::getenv("SABOT_REQUIRE_KAFKA");                         \
      if (req && std::string(req) == "1") FAIL() << "no broker at " << Bootstrap(); \
      GTEST_SKIP() << "no Kafka broker at " << Bootstrap() << " (make kafka-up)";   \
    }                                                                               \
  } while (0)

std::string Unique(const std::string& prefix) {
  static std::mt19937_64 rng(std::random_device{}());
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%012llx",
                static_cast<unsigned long long>(rng() & 0xffffffffffffULL));
  return prefix + "-" + buf;
}

/// A topic deleted when the test ends.
struct Topic {
  explicit Topic(int partitions) : name(Unique("ckpt")) {
    auto st = CreateTopic(Bootstrap(), name, partitions);
    EXPECT_TRUE(st.ok()) << st;
  }
  ~Topic() { (void)DeleteTopic(Bootstrap(), name); }
  std::string name;
};

int64_t SteadyMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// Produces {"id": first+k} for k < n to `partition`, and waits for the acks.
void ProduceIds(const std::string& topic, int32_t partition, int64_t first, int64_t n) {
  auto conf = MakeConf(Bootstrap(), {{"linger.ms", "5"}});
  ASSERT_TRUE(conf.ok());
  auto producer = MakeClient(RD_KAFKA_PRODUCER, std::move(*conf));
  ASSERT_TRUE(producer.ok());
  for (int64_t k = 0; k < n; ++k) {
    std::string value = "{\"id\":" + std::to_string(first + k) + "}";
    ASSERT_EQ(
        rd_kafka_producev(producer->get(), RD_KAFKA_V_TOPIC(topic.c_str()),
                          RD_KAFKA_V_PARTITION(partition),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                          RD_KAFKA_V_VALUE(value.data(), value.size()), RD_KAFKA_V_END),
        RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  ASSERT_EQ(rd_kafka_flush(producer->get(), 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
}

int64_t IdOf(const void* payload, size_t len) {
  std::string s(static_cast<const char*>(payload), len);
  auto at = s.find("\"id\":");
  return at == std::string::npos ? -999 : std::stoll(s.substr(at + 5));
}

/// Every id in `topic`, read from the beginning to the end (the last stable
/// offset for read_committed) by an independent consumer.
std::multiset<int64_t> ReadIds(const std::string& topic, bool read_committed) {
  std::multiset<int64_t> ids;
  auto conf = MakeConf(
      Bootstrap(),
      {{"group.id", Unique("reader")},
       {"enable.partition.eof", "true"},
       {"enable.auto.commit", "false"},
       {"isolation.level", read_committed ? "read_committed" : "read_uncommitted"}});
  EXPECT_TRUE(conf.ok());
  auto consumer = MakeClient(RD_KAFKA_CONSUMER, std::move(*conf));
  EXPECT_TRUE(consumer.ok());
  auto partitions = TopicPartitionCount(consumer->get(), topic);
  EXPECT_TRUE(partitions.ok());
  PartitionList list(rd_kafka_topic_partition_list_new(*partitions));
  for (int32_t p = 0; p < *partitions; ++p) {
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
  }
  EXPECT_EQ(rd_kafka_assign(consumer->get(), list.get()), RD_KAFKA_RESP_ERR_NO_ERROR);
  std::set<int32_t> at_end;
  const int64_t deadline = SteadyMillis() + 30000;
  while (static_cast<int32_t>(at_end.size()) < *partitions && SteadyMillis() < deadline) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer->get(), 200);
    if (!m) continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      at_end.insert(m->partition);
    } else if (!m->err) {
      at_end.erase(m->partition);
      ids.insert(IdOf(m->payload, m->len));
    }
    rd_kafka_message_destroy(m);
  }
  EXPECT_EQ(static_cast<int32_t>(at_end.size()), *partitions) << "did not reach the end";
  rd_kafka_consumer_close(consumer->get());
  return ids;
}

// A read_committed reader stops at the last stable offset, which moves past a
// committed transaction only once the coordinator has written the commit
// markers to the partitions (asynchronously, after the commit returned). So a
// check of committed output reads again until it sees `want` or 30 s pass.
std::multiset<int64_t> ReadCommitted(const std::string& topic,
                                     const std::multiset<int64_t>& want) {
  const int64_t deadline = SteadyMillis() + 30000;
  std::multiset<int64_t> got = ReadIds(topic, /*read_committed=*/true);
  while (got != want && SteadyMillis() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    got = ReadIds(topic, /*read_committed=*/true);
  }
  return got;
}

std::multiset<int64_t> Range(int64_t first, int64_t n) {
  std::multiset<int64_t> s;
  for (int64_t i = 0; i < n; ++i) s.insert(first + i);
  return s;
}

std::multiset<int64_t> Union(std::multiset<int64_t> a, const std::multiset<int64_t>& b) {
  a.insert(b.begin(), b.end());
  return a;
}

std::shared_ptr<arrow::Schema> IdSchema() {
  return arrow::schema({arrow::field("id", arrow::int64())});
}

std::shared_ptr<arrow::RecordBatch> Ids(int64_t first, int64_t n) {
  arrow::Int64Builder b;
  for (int64_t i = 0; i < n; ++i) EXPECT_TRUE(b.Append(first + i).ok());
  std::shared_ptr<arrow::Array> a;
  EXPECT_TRUE(b.Finish(&a).ok());
  return arrow::RecordBatch::Make(IdSchema(), n, {a});
}

OperatorContext Context(const std::string& name, int instance, int parallelism,
                        SnapshotReader* restore = nullptr,
                        const std::string& job_name = "") {
  OperatorContext ctx;
  ctx.operator_name = name;
  ctx.instance_index = instance;
  ctx.parallelism = parallelism;
  ctx.restore = restore;
  ctx.job_name = job_name;
  return ctx;
}

// ---- source ----------------------------------------------------------------------

PlanNode SourceNode(std::shared_ptr<KafkaSourceOptions> options) {
  PlanNode node;
  node.kind = "kafka_source";
  node.name = "kafka_source#0";
  node.options = std::move(options);
  return node;
}

std::shared_ptr<KafkaSourceOptions> StaticSource(const std::vector<std::string>& topics,
                                                 const std::string& group) {
  auto o = std::make_shared<KafkaSourceOptions>();
  o->bootstrap = Bootstrap();
  o->topics = topics;
  o->group = group;
  o->assignment = Assignment::kStatic;
  o->start = StartPosition::kEarliest;
  o->format.schema = IdSchema();
  o->batch_size = 16;
  o->max_wait_ms = 0;
  o->pause_after_ms = 0;
  return o;
}

/// Polls until `want` more rows arrived (or, bounded, the end); rows into `ids`.
arrow::Result<bool> PollRows(SourceReader* reader, size_t want,
                             std::multiset<int64_t>* ids) {
  const size_t target = ids->size() + want;
  const int64_t deadline = SteadyMillis() + 30000;
  while (ids->size() < target && SteadyMillis() < deadline) {
    StreamElement element;
    ARROW_ASSIGN_OR_RAISE(PollResult r, reader->Poll(&element));
    if (r == PollResult::kEndOfInput) return true;
    if (r == PollResult::kElement && element.is_batch()) {
      const auto& col = static_cast<const arrow::Int64Array&>(*element.batch->column(0));
      for (int64_t i = 0; i < col.length(); ++i) ids->insert(col.Value(i));
    }
  }
  if (ids->size() < target) return arrow::Status::IOError("timed out polling");
  return false;
}

/// The group's committed offset of every partition of `topic` (-1001: none).
std::map<int32_t, int64_t> Committed(const std::string& group, const std::string& topic,
                                     int32_t partitions) {
  auto conf = MakeConf(Bootstrap(), {{"group.id", group}});
  auto consumer = MakeClient(RD_KAFKA_CONSUMER, std::move(*conf));
  PartitionList list(rd_kafka_topic_partition_list_new(partitions));
  for (int32_t p = 0; p < partitions; ++p) {
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p);
  }
  EXPECT_EQ(rd_kafka_committed(consumer->get(), list.get(), 10000),
            RD_KAFKA_RESP_ERR_NO_ERROR);
  std::map<int32_t, int64_t> out;
  for (int i = 0; i < list->cnt; ++i)
    out[list->elems[i].partition] = list->elems[i].offset;
  rd_kafka_consumer_close(consumer->get());
  return out;
}

TEST(KafkaSourceCheckpoint, RestoresOffsetsAtAnotherParallelism) {
  REQUIRE_BROKER();
  Topic topic(4);
  for (int32_t p = 0; p < 4; ++p) ProduceIds(topic.name, p, p * 1000, 100);
  const std::string group = Unique("group");
  auto options = StaticSource({topic.name}, group);
  PlanNode node = SourceNode(options);

  MemorySnapshot snapshot(1);
  std::multiset<int64_t> before;
  {
    std::vector<std::unique_ptr<SourceReader>> readers;
    for (int i = 0; i < 2; ++i) {
      auto reader = OperatorRegistry::Global()->MakeSource(node, i, 2);
      ASSERT_TRUE(reader.ok()) << reader.status();
      OperatorContext ctx = Context(node.name, i, 2);
      ASSERT_TRUE((*reader)->Open(&ctx).ok());
      // Part of its 2 x 100 messages, then the checkpoint.
      ASSERT_TRUE(PollRows(reader->get(), 70, &before).ok());
      auto writer = snapshot.Writer(node.name, i, 2);
      ASSERT_TRUE((*reader)->SnapshotState(writer.get()).ok());
      readers.push_back(std::move(*reader));
    }
    // Static assignment commits nothing before a checkpoint completes.
    for (const auto& [p, offset] : Committed(group, topic.name, 4)) {
      EXPECT_LT(offset, 0) << "partition " << p;
    }
    // Rows read after the checkpoint are read again after the restore.
    std::multiset<int64_t> after_checkpoint;
    for (auto& r : readers) ASSERT_TRUE(PollRows(r.get(), 20, &after_checkpoint).ok());
    for (auto& r : readers) ASSERT_TRUE(r->NotifyCheckpointComplete(1).ok());
    // The checkpointed offsets reach the group (for monitoring).
    std::map<int32_t, int64_t> expected;
    for (int32_t p = 0; p < 4; ++p) {
      expected[p] = static_cast<int64_t>(std::distance(
          before.lower_bound(p * 1000), before.lower_bound(p * 1000 + 1000)));
    }
    std::map<int32_t, int64_t> committed;
    const int64_t deadline = SteadyMillis() + 20000;
    while (SteadyMillis() < deadline) {
      committed = Committed(group, topic.name, 4);
      if (committed == expected) break;
    }
    EXPECT_EQ(committed, expected);
  }  // the readers are dropped without Close: a crash

  for (int32_t p = 0; p < 4; ++p) ProduceIds(topic.name, p, p * 1000 + 100, 50);
  options->end_offsets.clear();
  for (int32_t p = 0; p < 4; ++p) options->end_offsets[{topic.name, p}] = 150;
  std::multiset<int64_t> after;
  for (int i = 0; i < 3; ++i) {
    auto reader = OperatorRegistry::Global()->MakeSource(node, i, 3);
    ASSERT_TRUE(reader.ok());
    auto restore = snapshot.Reader(node.name, i, 3);
    OperatorContext ctx = Context(node.name, i, 3, restore.get());
    ASSERT_TRUE((*reader)->Open(&ctx).ok());
    auto done = PollRows(reader->get(), 1000, &after);
    ASSERT_TRUE(done.ok() && *done) << done.status();
    ASSERT_TRUE((*reader)->Close().ok());
  }
  std::multiset<int64_t> want;
  for (int32_t p = 0; p < 4; ++p) want = Union(want, Range(p * 1000, 150));
  EXPECT_EQ(Union(before, after), want);  // every message exactly once
  EXPECT_EQ(options->stats->restored_partitions.load(), 4);
}

TEST(KafkaSourceCheckpoint, PartitionWithoutStoredOffsetUsesStartPosition) {
  REQUIRE_BROKER();
  Topic a(1), b(1);
  ProduceIds(a.name, 0, 0, 40);
  ProduceIds(b.name, 0, 5000, 40);
  MemorySnapshot snapshot(3);
  std::multiset<int64_t> before;
  {
    auto options = StaticSource({a.name}, Unique("group"));
    PlanNode node = SourceNode(options);
    auto reader = OperatorRegistry::Global()->MakeSource(node, 0, 1);
    OperatorContext ctx = Context(node.name, 0, 1);
    ASSERT_TRUE((*reader)->Open(&ctx).ok());
    ASSERT_TRUE(PollRows(reader->get(), 16, &before).ok());
    auto writer = snapshot.Writer(node.name, 0, 1);
    ASSERT_TRUE((*reader)->SnapshotState(writer.get()).ok());
  }
  // Restored with a second topic the checkpoint knows nothing of: it starts
  // at its start position ("latest": only messages produced from now on).
  auto options = StaticSource({a.name, b.name}, Unique("group"));
  options->start = StartPosition::kLatest;
  options->end_offsets[{a.name, 0}] = 40;
  options->end_offsets[{b.name, 0}] = 50;
  PlanNode node = SourceNode(options);
  auto reader = OperatorRegistry::Global()->MakeSource(node, 0, 1);
  auto restore = snapshot.Reader(node.name, 0, 1);
  OperatorContext ctx = Context(node.name, 0, 1, restore.get());
  ASSERT_TRUE((*reader)->Open(&ctx).ok());
  ProduceIds(b.name, 0, 6000, 10);
  std::multiset<int64_t> after;
  auto done = PollRows(reader->get(), 1000, &after);
  ASSERT_TRUE(done.ok() && *done) << done.status();
  EXPECT_EQ(Union(before, after), Union(Range(0, 40), Range(6000, 10)));
}

TEST(KafkaSourceCheckpoint, GroupAssignmentAlsoResumesFromTheCheckpoint) {
  REQUIRE_BROKER();
  Topic topic(2);
  for (int32_t p = 0; p < 2; ++p) ProduceIds(topic.name, p, p * 1000, 60);
  auto options = StaticSource({topic.name}, Unique("group"));
  options->assignment = Assignment::kGroup;
  PlanNode node = SourceNode(options);
  MemorySnapshot snapshot(2);
  std::multiset<int64_t> before;
  {
    auto reader = OperatorRegistry::Global()->MakeSource(node, 0, 1);
    OperatorContext ctx = Context(node.name, 0, 1);
    ASSERT_TRUE((*reader)->Open(&ctx).ok());
    ASSERT_TRUE(PollRows(reader->get(), 40, &before).ok());
    auto writer = snapshot.Writer(node.name, 0, 1);
    ASSERT_TRUE((*reader)->SnapshotState(writer.get()).ok());
  }  // dropped without a commit (offsets were committed periodically before)
  options->end_offsets[{topic.name, 0}] = 60;
  options->end_offsets[{topic.name, 1}] = 60;
  options->start = StartPosition::kLatest;  // must not matter: the checkpoint wins
  auto reader = OperatorRegistry::Global()->MakeSource(node, 0, 1);
  auto restore = snapshot.Reader(node.name, 0, 1);
  OperatorContext ctx = Context(node.name, 0, 1, restore.get());
  ASSERT_TRUE((*reader)->Open(&ctx).ok());
  std::multiset<int64_t> after;
  auto done = PollRows(reader->get(), 1000, &after);
  ASSERT_TRUE(done.ok() && *done) << done.status();
  EXPECT_EQ(Union(before, after), Union(Range(0, 60), Range(1000, 60)));
}

TEST(KafkaSourceCheckpoint, DroppingAPausedStaticReaderDoesNotHang) {
  REQUIRE_BROKER();
  Topic topic(2);
  for (int32_t p = 0; p < 2; ++p) ProduceIds(topic.name, p, p * 1000, 50);
  auto options = StaticSource({topic.name}, Unique("group"));
  options->pause_after_ms = 20;
  PlanNode node = SourceNode(options);
  auto reader = OperatorRegistry::Global()->MakeSource(node, 0, 1);
  ASSERT_TRUE(reader.ok());
  OperatorContext ctx = Context(node.name, 0, 1);
  ASSERT_TRUE((*reader)->Open(&ctx).ok());
  std::multiset<int64_t> ids;
  ASSERT_TRUE(PollRows(reader->get(), 16, &ids).ok());
  // Not polled any more (a cancelled job): the watchdog pauses the partitions.
  const int64_t deadline = SteadyMillis() + 20000;
  while (options->stats->pauses.load() == 0 && SteadyMillis() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_GT(options->stats->pauses.load(), 0);
  // librdkafka keeps partition references in lists passed to pause/resume; the
  // reader must free them before the consumer, or rd_kafka_destroy waits forever.
  auto dropped = std::make_shared<std::promise<void>>();
  auto done = dropped->get_future();
  std::thread([r = std::move(*reader), dropped]() mutable {
    r.reset();
    dropped->set_value();
  }).detach();
  ASSERT_EQ(done.wait_for(std::chrono::seconds(30)), std::future_status::ready);
}

// ---- exactly-once sink --------------------------------------------------------------

/// One sink node of a job named `job` writing `topic` exactly-once.
struct EosSink {
  EosSink(const std::string& topic, const std::string& job) : job(job) {
    options = std::make_shared<KafkaSinkOptions>();
    options->bootstrap = Bootstrap();
    options->topic = topic;
    options->delivery = Delivery::kExactlyOnce;
    options->uid = "sink";
    options->transaction_timeout_ms = 20000;
    node.kind = "kafka_sink";
    node.name = "kafka_sink#1";
    node.options = options;
  }

  /// Opens instance `i` of `p` (restoring from `snapshot` when given).
  arrow::Result<std::unique_ptr<Operator>> Open(int i, int p,
                                                MemorySnapshot* snapshot = nullptr) {
    ARROW_ASSIGN_OR_RAISE(auto op, OperatorRegistry::Global()->MakeOperator(node, i, p));
    std::unique_ptr<SnapshotReader> restore;
    if (snapshot) restore = snapshot->Reader(node.name, i, p);
    OperatorContext ctx = Context(node.name, i, p, restore.get(), job);
    ARROW_RETURN_NOT_OK(op->Open(&ctx));
    return op;
  }

  OperatorContext Ctx(int i, int p) { return Context(node.name, i, p, nullptr, job); }

  arrow::Status Snapshot(Operator* op, MemorySnapshot* snapshot, int i, int p) {
    auto writer = snapshot->Writer(node.name, i, p);
    OperatorContext ctx = Ctx(i, p);
    return op->SnapshotState(writer.get(), &ctx);
  }

  arrow::Status Write(Operator* op, int64_t first, int64_t n, int i = 0, int p = 1) {
    OperatorContext ctx = Ctx(i, p);
    return op->ProcessBatch(0, Ids(first, n), &ctx, nullptr);
  }

  arrow::Status Complete(Operator* op, int64_t id, int i = 0, int p = 1) {
    OperatorContext ctx = Ctx(i, p);
    return op->NotifyCheckpointComplete(id, &ctx);
  }

  std::string job;
  std::shared_ptr<KafkaSinkOptions> options;
  PlanNode node;
};

#define ASSERT_OK(expr)                            \
  do {                                             \
    auto _st = (expr);                             \
    ASSERT_TRUE(_st.ok()) << #expr << ": " << _st; \
  } while (0)

TEST(KafkaExactlyOnceSink, CommitsOnlyWhenTheCheckpointCompletes) {
  REQUIRE_BROKER();
  Topic out(2);
  EosSink sink(out.name, Unique("job"));
  auto op = sink.Open(0, 1);
  ASSERT_TRUE(op.ok()) << op.status();
  ASSERT_OK(sink.Write(op->get(), 0, 100));
  MemorySnapshot s1(1);
  ASSERT_OK(sink.Snapshot(op->get(), &s1, 0, 1));
  // Pre-committed into the checkpoint only: nothing in Kafka yet.
  EXPECT_TRUE(ReadIds(out.name, /*read_committed=*/false).empty());
  ASSERT_OK(sink.Complete(op->get(), 1));
  EXPECT_EQ(ReadCommitted(out.name, Range(0, 100)), Range(0, 100));
  ASSERT_OK(sink.Write(op->get(), 100, 50));
  MemorySnapshot s2(2);
  ASSERT_OK(sink.Snapshot(op->get(), &s2, 0, 1));
  ASSERT_OK(sink.Write(op->get(), 150, 25));  // after checkpoint 2
  ASSERT_OK(sink.Complete(op->get(), 2));
  EXPECT_EQ(ReadCommitted(out.name, Range(0, 150)), Range(0, 150));
  OperatorContext ctx = sink.Ctx(0, 1);
  ASSERT_OK((*op)->Close(&ctx, nullptr));  // end of input commits the rest
  EXPECT_EQ(ReadCommitted(out.name, Range(0, 175)), Range(0, 175));
  EXPECT_EQ(sink.options->stats->transactions.load(), 3);
}

TEST(KafkaExactlyOnceSink, CrashBeforeCommitIsCommittedOnRestore) {
  REQUIRE_BROKER();
  Topic out(3);
  EosSink sink(out.name, Unique("job"));
  MemorySnapshot s1(1);
  {
    auto op = sink.Open(0, 1);
    ASSERT_TRUE(op.ok()) << op.status();
    ASSERT_OK(sink.Write(op->get(), 0, 100));
    ASSERT_OK(sink.Snapshot(op->get(), &s1, 0, 1));
    ASSERT_OK(sink.Write(op->get(), 5000, 10));  // after the checkpoint: lost
  }  // dropped after SnapshotState, before NotifyCheckpointComplete
  EXPECT_TRUE(ReadIds(out.name, false).empty());

  auto op = sink.Open(0, 1, &s1);
  ASSERT_TRUE(op.ok()) << op.status();
  EXPECT_EQ(ReadCommitted(out.name, Range(0, 100)), Range(0, 100));
  EXPECT_EQ(sink.options->stats->recommitted_epochs.load(), 1);
  ASSERT_OK(sink.Write(op->get(), 100, 50));
  MemorySnapshot s2(2);
  ASSERT_OK(sink.Snapshot(op->get(), &s2, 0, 1));
  ASSERT_OK(sink.Complete(op->get(), 2));
  EXPECT_EQ(ReadCommitted(out.name, Range(0, 150)), Range(0, 150));
}

TEST(KafkaExactlyOnceSink, CrashAfterCommitIsNotRepeated) {
  REQUIRE_BROKER();
  Topic out(1);
  EosSink sink(out.name, Unique("job"));
  MemorySnapshot s1(1);
  {
    auto op = sink.Open(0, 1);
    ASSERT_TRUE(op.ok()) << op.status();
    ASSERT_OK(sink.Write(op->get(), 0, 100));
    ASSERT_OK(sink.Snapshot(op->get(), &s1, 0, 1));
    ASSERT_OK(sink.Complete(op->get(), 1));
  }  // dropped right after the commit
  EXPECT_EQ(ReadCommitted(out.name, Range(0, 100)), Range(0, 100));

  // The restored checkpoint still lists epoch 1 as pending; the marker says it
  // is in Kafka already.
  auto op = sink.Open(0, 1, &s1);
  ASSERT_TRUE(op.ok()) << op.status();
  EXPECT_EQ(sink.options->stats->skipped_epochs.load(), 1);
  EXPECT_EQ(sink.options->stats->recommitted_epochs.load(), 0);
  ASSERT_OK(sink.Write(op->get(), 100, 10));
  MemorySnapshot s2(2);
  ASSERT_OK(sink.Snapshot(op->get(), &s2, 0, 1));
  ASSERT_OK(sink.Complete(op->get(), 2));
  EXPECT_EQ(ReadCommitted(out.name, Range(0, 110)), Range(0, 110));  // no duplicate
}

TEST(KafkaExactlyOnceSink, RestoreAtLowerParallelismCommitsOldInstances) {
  REQUIRE_BROKER();
  Topic out(2);
  EosSink sink(out.name, Unique("job"));
  MemorySnapshot s4(4);
  for (int i = 0; i < 3; ++i) {
    auto op = sink.Open(i, 3);
    ASSERT_TRUE(op.ok()) << op.status();
    ASSERT_OK(sink.Write(op->get(), i * 1000, 100, i, 3));
    ASSERT_OK(sink.Snapshot(op->get(), &s4, i, 3));
    if (i == 2) ASSERT_OK(sink.Complete(op->get(), 4, i, 3));  // only 2 committed
  }
  EXPECT_EQ(ReadCommitted(out.name, Range(2000, 100)), Range(2000, 100));
  // Instance 0 of 1 answers for the old instances 0, 1 and 2.
  auto op = sink.Open(0, 1, &s4);
  ASSERT_TRUE(op.ok()) << op.status();
  EXPECT_EQ(ReadCommitted(out.name, Union(Union(Range(0, 100), Range(1000, 100)),
                                          Range(2000, 100))),
            Union(Union(Range(0, 100), Range(1000, 100)), Range(2000, 100)));
  EXPECT_EQ(sink.options->stats->recommitted_epochs.load(), 2);
  EXPECT_EQ(sink.options->stats->skipped_epochs.load(), 1);
}

TEST(KafkaExactlyOnceSink, OldProducerIsFencedAndItsOpenTransactionAborted) {
  REQUIRE_BROKER();
  Topic out(1);
  EosSink sink(out.name, Unique("job"));
  // A zombie with the instance's transactional id: an open transaction holding
  // messages that must never become visible.
  auto conf =
      MakeConf(Bootstrap(), {{"transactional.id", TransactionalId(sink.job, "sink", 0)}});
  ASSERT_TRUE(conf.ok());
  auto zombie = MakeClient(RD_KAFKA_PRODUCER, std::move(*conf));
  ASSERT_TRUE(zombie.ok());
  ASSERT_EQ(rd_kafka_init_transactions(zombie->get(), 30000), nullptr);
  ASSERT_EQ(rd_kafka_begin_transaction(zombie->get()), nullptr);
  std::string garbage = "{\"id\":-1}";
  for (int k = 0; k < 10; ++k) {
    ASSERT_EQ(rd_kafka_producev(zombie->get(), RD_KAFKA_V_TOPIC(out.name.c_str()),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_VALUE(garbage.data(), garbage.size()),
                                RD_KAFKA_V_END),
              RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  ASSERT_EQ(rd_kafka_flush(zombie->get(), 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
  EXPECT_EQ(ReadIds(out.name, false).count(-1), 10u);  // in the log, uncommitted

  // A sink instance with that id: its open fences the zombie and aborts its
  // transaction (else read_committed readers would stall behind it).
  MemorySnapshot s1(1);
  auto first = sink.Open(0, 1);
  ASSERT_TRUE(first.ok()) << first.status();
  rd_kafka_error_t* error = rd_kafka_commit_transaction(zombie->get(), 10000);
  ASSERT_NE(error, nullptr);
  EXPECT_TRUE(rd_kafka_error_is_fatal(error)) << rd_kafka_error_string(error);
  rd_kafka_error_destroy(error);

  ASSERT_OK(sink.Write(first->get(), 0, 30));
  ASSERT_OK(sink.Snapshot(first->get(), &s1, 0, 1));
  // A second instance with the same id (a restarted worker while the first
  // still runs): the first one is fenced in turn and cannot commit.
  auto second = sink.Open(0, 1, &s1);
  ASSERT_TRUE(second.ok()) << second.status();
  auto st = sink.Complete(first->get(), 1);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("fenced"), std::string::npos) << st;
  EXPECT_NE(st.message().find(TransactionalId(sink.job, "sink", 0)), std::string::npos);
  EXPECT_EQ(ReadCommitted(out.name, Range(0, 30)),
            Range(0, 30));  // committed once, by the second
}

TEST(KafkaExactlyOnceSink, MarkerOfAnEarlierRunDoesNotHideNewEpochs) {
  REQUIRE_BROKER();
  Topic out(1);
  const std::string job = Unique("job");
  {
    // An earlier run of the same job name got as far as checkpoint 57.
    EosSink earlier(out.name, job);
    auto op = earlier.Open(0, 1);
    ASSERT_TRUE(op.ok()) << op.status();
    ASSERT_OK(earlier.Write(op->get(), 9000, 5));
    MemorySnapshot s57(57);
    ASSERT_OK(earlier.Snapshot(op->get(), &s57, 0, 1));
    ASSERT_OK(earlier.Complete(op->get(), 57));
  }
  // A fresh run (no restore) numbers checkpoints from 1 again.
  EosSink sink(out.name, job);
  MemorySnapshot s1(1);
  {
    auto op = sink.Open(0, 1);
    ASSERT_TRUE(op.ok()) << op.status();
    ASSERT_OK(sink.Write(op->get(), 0, 20));
    ASSERT_OK(sink.Snapshot(op->get(), &s1, 0, 1));
  }  // crash before checkpoint 1 completed
  auto op = sink.Open(0, 1, &s1);
  ASSERT_TRUE(op.ok()) << op.status();
  EXPECT_EQ(ReadCommitted(out.name, Union(Range(9000, 5), Range(0, 20))),
            Union(Range(9000, 5), Range(0, 20)));
}

TEST(KafkaExactlyOnceSink, BufferBoundIsAClearError) {
  REQUIRE_BROKER();
  Topic out(1);
  EosSink sink(out.name, Unique("job"));
  sink.options->max_pending_bytes = 1000;
  auto op = sink.Open(0, 1);
  ASSERT_TRUE(op.ok()) << op.status();
  auto st = sink.Write(op->get(), 0, 500);
  ASSERT_TRUE(st.IsCapacityError()) << st;
  EXPECT_NE(st.message().find("max_pending_bytes"), std::string::npos);
  EXPECT_NE(st.message().find(out.name), std::string::npos);
}

}  // namespace
}  // namespace sabot::kafka
