// Source "kafka_source": reads Kafka topics through one consumer group.
//
// Every parallel instance is a consumer of the same group; Kafka assigns the
// partitions (one split per partition) and moves them on rebalances. Message
// values are decoded by a sabot::Decoder (formats/format.h) into Arrow columns;
// key, topic, partition, offset, timestamp and headers can be added as columns.
//
/// Threading contract: a reader is driven by one task; librdkafka's callbacks
/// (rebalance, commit results) run inside Poll on that task's thread. Only the
/// pause watchdog runs on its own thread and touches the consumer only through
/// librdkafka's thread-safe pause/resume calls under a mutex.
///
/// Delivery without checkpoints: at-least-once. Offsets are committed
/// (asynchronously, every `commit_interval_ms`, synchronously on revoke and close)
/// only for messages whose rows were emitted downstream, and for bad records after
/// they were skipped or their dead-letter copy was acknowledged by the broker.
///
/// With checkpoints: SnapshotState writes, per partition, the offset of the next
/// message not yet handed downstream (operator state "kafka_offsets": topic,
/// partition, offset, end), and Open resumes every partition found there; a
/// restore at another parallelism hands each partition its offset wherever it is
/// assigned. With static assignment, and in group mode once the job checkpoints
/// (or was restored), offsets are committed to the consumer group only when a
/// checkpoint completes (and at the end of a bounded read), for monitoring;
/// recovery never reads them. Exactly-once needs `assignment = kStatic`: with the group
/// protocol, a rebalance between two instances' barriers can split a partition's
/// records across a checkpoint (see docs/design/exactly_once.md).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "sabot/connectors/kafka/kafka_client.h"
#include "sabot/formats/format.h"
#include "sabot/plan/plan.h"
#include "sabot/plan/registry.h"

namespace sabot::kafka {

/// What to do with a message whose value does not decode.
enum class BadRecordPolicy {
  kFail,        ///< the job fails, naming topic, partition, offset and reason
  kSkip,        ///< dropped, counted in `bad_records_skipped` and logged
  kDeadLetter,  ///< original key/value/headers + error produced to a dead-letter topic
};

arrow::Result<BadRecordPolicy> ParseBadRecordPolicy(const std::string& name);

/// Where a partition starts when this job first reads it.
enum class StartPosition { kCommitted, kEarliest, kLatest, kTimestamp };

arrow::Result<StartPosition> ParseStartPosition(const std::string& name);

/// How partitions are spread over the parallel instances.
enum class Assignment {
  /// Kafka's consumer-group protocol: partitions move on rebalances, also to
  /// other processes of the same group (scale-out).
  kGroup,
  /// Fixed: the partitions of all topics, sorted by (topic, partition), go
  /// round-robin to the instances (k-th to instance k % parallelism); the
  /// group is used only to commit offsets for monitoring. Required for
  /// exactly-once; partitions added to a topic later are not picked up.
  kStatic,
};

arrow::Result<Assignment> ParseAssignment(const std::string& name);

/// Name of the operator-state table holding the source's offsets.
inline constexpr const char* kKafkaOffsetsState = "kafka_offsets";

/// Counters shared by all instances of one source node (read from any thread).
struct KafkaSourceStats {
  std::atomic<int64_t> messages{0};       ///< messages taken from Kafka
  std::atomic<int64_t> bytes{0};          ///< value + key bytes of those
  std::atomic<int64_t> rows{0};           ///< rows emitted downstream
  std::atomic<int64_t> batches{0};        ///< batches emitted downstream
  std::atomic<int64_t> bad_records{0};    ///< messages that failed to decode
  std::atomic<int64_t> skipped{0};        ///< bad records dropped by policy "skip"
  std::atomic<int64_t> dead_lettered{0};  ///< bad records acknowledged by the DLQ
  std::atomic<int64_t> rebalances{0};     ///< assignment changes seen
  std::atomic<int64_t> assigned{0};       ///< partitions assigned right now
  std::atomic<int64_t> pauses{0};         ///< times the watchdog paused fetching
  std::atomic<int64_t> commits{0};        ///< offset commits requested
  std::atomic<int64_t> commit_failures{0};
  std::atomic<int64_t> stale_dropped{0};  ///< prefetched messages of revoked partitions
  std::atomic<int64_t> restored_partitions{0};  ///< partitions resumed from a checkpoint
  std::atomic<int64_t> checkpoint_commits{0};   ///< commits on checkpoint completion
};

/// What the instances of one source node share in one process: the partitions
/// this job already started (a partition that moves between instances resumes
/// from committed offsets, not from `start` again) and the end offsets of a
/// bounded read (captured once per partition).
class KafkaSourceShared {
 public:
  /// Returns true the first time it is called for (topic, partition).
  bool MarkStarted(const std::string& topic, int32_t partition);
  /// The end offset recorded for the partition, or records `end` and returns it.
  int64_t EndOffset(const std::string& topic, int32_t partition, int64_t end);

  /// Group assignment with a restore: the restored offsets of partitions that no
  /// instance of this process was assigned yet stay in the snapshot (instance 0
  /// writes them) until an instance claims the partition.
  void SetRestored(int64_t checkpoint_id,
                   std::map<std::pair<std::string, int32_t>, int64_t> offsets);
  void Claim(const std::string& topic, int32_t partition);
  std::map<std::pair<std::string, int32_t>, int64_t> Unclaimed();

 private:
  int64_t restored_id_ = -1;
  std::map<std::pair<std::string, int32_t>, int64_t> unclaimed_;
  std::mutex mutex_;
  std::set<std::pair<std::string, int32_t>> started_;
  std::map<std::pair<std::string, int32_t>, int64_t> end_offsets_;
};

struct KafkaSourceOptions : NodeOptions {
  std::string bootstrap;
  /// Topic names, or a single regex pattern starting with '^'.
  std::vector<std::string> topics;
  /// Consumer group; empty: a fresh "sabot-<random>" group per job.
  std::string group;
  StartPosition start = StartPosition::kCommitted;
  /// kTimestamp: first offset whose timestamp is >= this (epoch ms).
  int64_t start_timestamp_ms = 0;
  /// kCommitted, partitions without a committed offset: "earliest" or "latest".
  std::string reset = "earliest";
  Assignment assignment = Assignment::kGroup;

  FormatOptions format;
  /// Metadata columns appended after the value columns, any of: key, topic,
  /// partition, offset, timestamp, headers. Named `metadata_prefix + name`.
  std::vector<std::string> metadata;
  std::string metadata_prefix;

  BadRecordPolicy bad_records = BadRecordPolicy::kFail;
  std::string dead_letter_topic;

  /// A batch is emitted at `batch_size` rows or `max_wait_ms` after its first row.
  int64_t batch_size = 8192;
  int64_t max_wait_ms = 20;
  /// Bounded mode: stop once every assigned partition reached the end offset it had
  /// when this job first read it.
  bool stop_at_end = false;
  /// Bounded mode with explicit ends: (topic, partition) -> stop before this offset.
  std::map<std::pair<std::string, int32_t>, int64_t> end_offsets;

  int64_t commit_interval_ms = 1000;
  /// When the runtime has not polled for this long (downstream backpressure), the
  /// watchdog pauses fetching of all assigned partitions; the next poll resumes.
  int64_t pause_after_ms = 500;
  /// Bound of librdkafka's prefetch queue per consumer.
  int64_t max_prefetch_bytes = 64 << 20;
  /// Passed through to librdkafka (consumer properties), after Sabot's defaults.
  ClientConfig consumer_config;
  /// Passed through to the dead-letter producer.
  ClientConfig dead_letter_config;

  std::shared_ptr<KafkaSourceStats> stats = std::make_shared<KafkaSourceStats>();
  std::shared_ptr<KafkaSourceShared> shared = std::make_shared<KafkaSourceShared>();

  std::string ToString() const override;
  /// Checks option values and combinations.
  arrow::Status Validate() const;
};

/// The schema of the metadata columns in `options.metadata` (in that order).
arrow::Result<std::shared_ptr<arrow::Schema>> MetadataSchema(
    const KafkaSourceOptions& options);

void RegisterKafkaSource(OperatorRegistry* registry);

}  // namespace sabot::kafka
