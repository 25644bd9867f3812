#include "sabot/connectors/kafka/kafka_source.h"

#include <arrow/array/builder_binary.h>
#include <arrow/array/builder_nested.h>
#include <arrow/array/builder_primitive.h>
#include <arrow/compute/api_vector.h>
#include <arrow/util/logging.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

#include "sabot/exec/source.h"

namespace sabot::kafka {

namespace {

int64_t SteadyNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

constexpr const char* kMetadataNames[] = {"key",    "topic",     "partition",
                                          "offset", "timestamp", "headers"};

std::shared_ptr<arrow::DataType> HeadersType() {
  return arrow::map(arrow::utf8(), arrow::binary());
}

std::string RandomGroup() {
  std::random_device rd;
  char buf[32];
  std::snprintf(buf, sizeof(buf), "sabot-%08x%08x", rd(), rd());
  return buf;
}

bool IsPattern(const std::vector<std::string>& topics) {
  return topics.size() == 1 && !topics[0].empty() && topics[0][0] == '^';
}

}  // namespace

arrow::Result<BadRecordPolicy> ParseBadRecordPolicy(const std::string& name) {
  if (name == "fail") return BadRecordPolicy::kFail;
  if (name == "skip") return BadRecordPolicy::kSkip;
  if (name == "dead_letter") return BadRecordPolicy::kDeadLetter;
  return arrow::Status::Invalid("kafka: unknown bad-record policy '", name,
                                "' (expected fail, skip or dead_letter)");
}

arrow::Result<Assignment> ParseAssignment(const std::string& name) {
  if (name == "group") return Assignment::kGroup;
  if (name == "static") return Assignment::kStatic;
  return arrow::Status::Invalid("kafka: unknown partition assignment '", name,
                                "' (expected group or static)");
}

arrow::Result<StartPosition> ParseStartPosition(const std::string& name) {
  if (name == "committed") return StartPosition::kCommitted;
  if (name == "earliest") return StartPosition::kEarliest;
  if (name == "latest") return StartPosition::kLatest;
  if (name == "timestamp") return StartPosition::kTimestamp;
  return arrow::Status::Invalid("kafka: unknown start position '", name,
                                "' (expected committed, earliest, latest or timestamp)");
}

bool KafkaSourceShared::MarkStarted(const std::string& topic, int32_t partition) {
  std::lock_guard<std::mutex> lock(mutex_);
  return started_.emplace(topic, partition).second;
}

void KafkaSourceShared::SetRestored(
    int64_t checkpoint_id, std::map<std::pair<std::string, int32_t>, int64_t> offsets) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (restored_id_ == checkpoint_id) return;  // every instance restores the same union
  restored_id_ = checkpoint_id;
  unclaimed_ = std::move(offsets);
  started_.clear();  // a run restored with the same plan starts over
}

void KafkaSourceShared::Claim(const std::string& topic, int32_t partition) {
  std::lock_guard<std::mutex> lock(mutex_);
  unclaimed_.erase({topic, partition});
}

std::map<std::pair<std::string, int32_t>, int64_t> KafkaSourceShared::Unclaimed() {
  std::lock_guard<std::mutex> lock(mutex_);
  return unclaimed_;
}

int64_t KafkaSourceShared::EndOffset(const std::string& topic, int32_t partition,
                                     int64_t end) {
  std::lock_guard<std::mutex> lock(mutex_);
  return end_offsets_.emplace(std::make_pair(topic, partition), end).first->second;
}

std::string KafkaSourceOptions::ToString() const {
  std::ostringstream s;
  s << "kafka_source(topics=[";
  for (size_t i = 0; i < topics.size(); ++i) s << (i ? "," : "") << topics[i];
  s << "], group=" << group << ", format=" << format.name;
  if (stop_at_end || !end_offsets.empty()) s << ", bounded";
  if (assignment == Assignment::kStatic) s << ", assignment=static";
  s << ")";
  return s.str();
}

arrow::Status KafkaSourceOptions::Validate() const {
  if (bootstrap.empty() && !consumer_config.count("bootstrap.servers"))
    return arrow::Status::Invalid("kafka_source: no bootstrap servers given");
  if (topics.empty()) return arrow::Status::Invalid("kafka_source: no topics given");
  for (const auto& t : topics) {
    if (t.empty()) return arrow::Status::Invalid("kafka_source: empty topic name");
    if (t[0] == '^' && topics.size() > 1)
      return arrow::Status::Invalid("kafka_source: a topic pattern ('", t,
                                    "') must be the only topic given");
  }
  if (batch_size < 1)
    return arrow::Status::Invalid("kafka_source: batch_size must be >= 1, not ",
                                  batch_size);
  if (max_wait_ms < 0)
    return arrow::Status::Invalid("kafka_source: max_wait_ms must be >= 0");
  if (bad_records == BadRecordPolicy::kDeadLetter && dead_letter_topic.empty())
    return arrow::Status::Invalid(
        "kafka_source: bad_records='dead_letter' needs a dead_letter_topic");
  if (reset != "earliest" && reset != "latest")
    return arrow::Status::Invalid("kafka_source: reset must be earliest or latest, not '",
                                  reset, "'");
  if (assignment == Assignment::kStatic && IsPattern(topics))
    return arrow::Status::Invalid("kafka_source: a topic pattern ('", topics[0],
                                  "') needs assignment='group'; static assignment "
                                  "reads the partitions of named topics");
  ARROW_RETURN_NOT_OK(MetadataSchema(*this).status());
  return arrow::Status::OK();
}

arrow::Result<std::shared_ptr<arrow::Schema>> MetadataSchema(
    const KafkaSourceOptions& options) {
  arrow::FieldVector fields;
  for (const auto& name : options.metadata) {
    std::shared_ptr<arrow::DataType> type;
    if (name == "key") {
      type = arrow::binary();
    } else if (name == "topic") {
      type = arrow::utf8();
    } else if (name == "partition") {
      type = arrow::int32();
    } else if (name == "offset") {
      type = arrow::int64();
    } else if (name == "timestamp") {
      type = arrow::timestamp(arrow::TimeUnit::MILLI, "UTC");
    } else if (name == "headers") {
      type = HeadersType();
    } else {
      return arrow::Status::Invalid(
          "kafka_source: unknown metadata column '", name,
          "' (expected key, topic, partition, offset, timestamp or headers)");
    }
    fields.push_back(
        arrow::field(options.metadata_prefix + name, type,
                     name == "key" || name == "timestamp" || name == "headers"));
  }
  return arrow::schema(std::move(fields));
}

namespace {

/// One assigned partition.
struct PartitionState {
  std::string topic;
  int32_t partition = 0;
  int64_t end = -1;           ///< bounded: stop before this offset; -1 unbounded
  bool done = false;          ///< bounded: reached `end`
  int64_t pending_next = -1;  ///< offset after the last message taken
  int64_t emitted_next = -1;  ///< offset after the last message emitted (committable)
  int64_t committed_next = -1;
  /// Offset after the last message handed to the runtime (what a checkpoint
  /// records); -1 before the first one.
  int64_t delivered_next = -1;
  /// The concrete offset reading started at (static assignment, restore); -1
  /// when librdkafka resolves it lazily (group assignment).
  int64_t start_offset = -1;
};

using TopicPartition = std::pair<std::string, int32_t>;

/// A batch ready to be handed to the runtime, with the partition positions it
/// completes (applied when it is handed over). An entry without an element only
/// advances positions (a batch whose records were all bad).
struct ReadyElement {
  std::optional<StreamElement> element;
  std::vector<std::pair<TopicPartition, int64_t>> advance;
};

/// Accumulates the messages of the batch being built.
struct PendingBatch {
  explicit PendingBatch(arrow::MemoryPool* pool)
      : values(pool),
        keys(pool),
        topics(pool),
        partitions(pool),
        offsets(pool),
        timestamps(arrow::timestamp(arrow::TimeUnit::MILLI, "UTC"), pool),
        headers(pool, std::make_shared<arrow::StringBuilder>(pool),
                std::make_shared<arrow::BinaryBuilder>(pool)) {}

  int64_t size() const { return static_cast<int64_t>(states.size()); }

  arrow::BinaryBuilder values;
  arrow::BinaryBuilder keys;
  arrow::StringBuilder topics;
  arrow::Int32Builder partitions;
  arrow::Int64Builder offsets;
  arrow::TimestampBuilder timestamps;
  arrow::MapBuilder headers;
  std::vector<PartitionState*> states;  // per message
  std::vector<int64_t> message_offsets;
  int64_t first_ns = 0;
};

class KafkaSourceReader : public SourceReader {
 public:
  KafkaSourceReader(const KafkaSourceOptions& options, int instance, int parallelism)
      : options_(options), instance_(instance), parallelism_(parallelism) {}

  ~KafkaSourceReader() override { Abandon(); }

  /// The assigned partition numbers (the split ids of per-partition watermarks).
  std::optional<std::vector<int64_t>> ActiveSplits() const override {
    if (!assignment_received_) return std::vector<int64_t>{};
    std::vector<int64_t> splits;
    for (const auto& [tp, state] : assignment_) splits.push_back(tp.second);
    return splits;
  }

  arrow::Status Open(OperatorContext* ctx) override {
    ARROW_RETURN_NOT_OK(options_.Validate());
    name_ = ctx->operator_name + "[" + std::to_string(instance_) + "/" +
            std::to_string(parallelism_) + "]";
    pool_ = ctx->pool;
    pending_ = std::make_unique<PendingBatch>(pool_);
    ARROW_ASSIGN_OR_RAISE(decoder_, MakeDecoder(options_.format, pool_));
    ARROW_ASSIGN_OR_RAISE(metadata_schema_, MetadataSchema(options_));
    for (const auto& m : options_.metadata) {
      if (m == "key") want_key_ = true;
      if (m == "topic") want_topic_ = true;
      if (m == "partition") want_partition_ = true;
      if (m == "offset") want_offset_ = true;
      if (m == "timestamp") want_timestamp_ = true;
      if (m == "headers") want_headers_ = true;
    }
    dead_letter_ = options_.bad_records == BadRecordPolicy::kDeadLetter;
    static_ = options_.assignment == Assignment::kStatic;
    // Static assignment is the exactly-once mode: offsets are committed only for
    // completed checkpoints, never ahead of them (a fresh start from committed
    // offsets must not skip records whose results were never committed).
    checkpointing_ = static_;
    if (ctx->restore) ARROW_RETURN_NOT_OK(ReadRestoredOffsets(ctx->restore));
    keep_key_ = want_key_ || dead_letter_;
    keep_headers_ = want_headers_ || dead_letter_;
    bounded_ = options_.stop_at_end || !options_.end_offsets.empty();

    ClientConfig config = {
        {"group.id", options_.group.empty() ? RandomGroup() : options_.group},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"auto.offset.reset", options_.reset},
        {"enable.partition.eof", bounded_ ? "true" : "false"},
        {"queued.max.messages.kbytes",
         std::to_string(std::max<int64_t>(1, options_.max_prefetch_bytes / 1024))},
        // librdkafka stops fetching when its local queue passes either threshold
        // and (2.0.x) waits about a second before fetching again; at hundreds of
        // thousands of messages per second that stalls the job. Bound the
        // prefetch by bytes only (max_prefetch_bytes), not by message count.
        {"queued.min.messages", "10000000"},
        {"fetch.wait.max.ms", "20"},
        {"allow.auto.create.topics", "false"},
        {"log.connection.close", "false"},
    };
    for (const auto& [k, v] : options_.consumer_config) config[k] = v;
    ARROW_ASSIGN_OR_RAISE(auto conf, MakeConf(options_.bootstrap, config));
    rd_kafka_conf_set_opaque(conf.get(), this);
    rd_kafka_conf_set_rebalance_cb(conf.get(), &KafkaSourceReader::RebalanceTrampoline);
    rd_kafka_conf_set_offset_commit_cb(conf.get(), &KafkaSourceReader::CommitTrampoline);
    rd_kafka_conf_set_error_cb(conf.get(), &KafkaSourceReader::ErrorTrampoline);
    ARROW_ASSIGN_OR_RAISE(consumer_, MakeClient(RD_KAFKA_CONSUMER, std::move(conf)));
    ARROW_RETURN_NOT_OK(
        KafkaStatus(rd_kafka_poll_set_consumer(consumer_.get()), "poll_set_consumer"));
    queue_ = rd_kafka_queue_get_consumer(consumer_.get());

    if (!IsPattern(options_.topics)) {
      for (const auto& topic : options_.topics) {
        auto count = TopicPartitionCount(consumer_.get(), topic);
        if (!count.ok()) {
          return count.status().WithMessage("kafka_source: cannot read topic '", topic,
                                            "' at ", options_.bootstrap, ": ",
                                            count.status().message());
        }
      }
    }
    if (dead_letter_) ARROW_RETURN_NOT_OK(OpenDeadLetterProducer());

    if (static_) {
      ARROW_RETURN_NOT_OK(AssignStatic());
    } else {
      PartitionList topics(
          rd_kafka_topic_partition_list_new(static_cast<int>(options_.topics.size())));
      for (const auto& topic : options_.topics) {
        rd_kafka_topic_partition_list_add(topics.get(), topic.c_str(),
                                          RD_KAFKA_PARTITION_UA);
      }
      ARROW_RETURN_NOT_OK(
          KafkaStatus(rd_kafka_subscribe(consumer_.get(), topics.get()), "subscribe"));
    }
    last_commit_ns_ = SteadyNanos();
    last_poll_ns_.store(SteadyNanos());
    if (options_.pause_after_ms > 0) {
      watchdog_ = std::thread([this] { WatchdogLoop(); });
    }
    return arrow::Status::OK();
  }

  arrow::Result<PollResult> Poll(StreamElement* out) override {
    EnterPoll();
    auto result = PollInner(out);
    LeavePoll();
    // The job fails with this error: leave the group now rather than when the
    // job object is freed (the topic may be gone by then).
    if (!result.ok()) Abandon();
    return result;
  }

  arrow::Status Close() override {
    StopWatchdog();
    if (!consumer_) return arrow::Status::OK();
    ARROW_RETURN_NOT_OK(Commit(/*async=*/false, /*final=*/true));
    closing_ = true;
    Unassign();
    rd_kafka_resp_err_t err = rd_kafka_consumer_close(consumer_.get());
    rd_kafka_queue_destroy(queue_);
    queue_ = nullptr;
    consumer_.reset();
    if (dead_letter_producer_) {
      rd_kafka_flush(dead_letter_producer_.get(), 30000);
      dead_letter_producer_.reset();
    }
    ARROW_RETURN_NOT_OK(deferred_error_);
    return KafkaStatus(err, name_ + ": closing the consumer");
  }

 private:
  /// Not closed normally (job failed or cancelled): leaves the group without
  /// committing what was taken but maybe not processed; it is read again.
  void Abandon() {
    StopWatchdog();
    if (consumer_) {
      closing_ = true;
      commit_on_revoke_ = false;
      Unassign();
      rd_kafka_consumer_close(consumer_.get());
      if (queue_) rd_kafka_queue_destroy(queue_);
      queue_ = nullptr;
      consumer_.reset();
    }
    dead_letter_producer_.reset();
  }

  /// Before the consumer is closed: resumes paused partitions, frees the pause
  /// list (librdkafka caches partition references in a list passed to
  /// pause/resume; a list that outlives the handle makes rd_kafka_destroy wait
  /// for them forever) and drops a static assignment (group consumers are
  /// unassigned by the close itself).
  void Unassign() {
    if (!consumer_) return;
    {
      std::lock_guard<std::mutex> lock(pause_mutex_);
      if (paused_ && pause_list_) {
        rd_kafka_resume_partitions(consumer_.get(), pause_list_.get());
      }
      paused_ = false;
      pause_list_.reset();
    }
    if (static_) rd_kafka_assign(consumer_.get(), nullptr);
  }

  // --- polling -----------------------------------------------------------------

  arrow::Result<PollResult> PollInner(StreamElement* out) {
    ARROW_RETURN_NOT_OK(deferred_error_);
    if (!consumer_) return arrow::Status::Invalid(name_, ": polled after it was closed");
    if (TakeReady(out)) return PollResult::kElement;

    const int64_t want = options_.batch_size - pending_->size();
    int64_t taken = 0;
    while (taken < want) {
      size_t n = static_cast<size_t>(std::min<int64_t>(want - taken, kConsumeChunk));
      ssize_t got = rd_kafka_consume_batch_queue(queue_, 0, messages_, n);
      if (got < 0) {
        return KafkaStatus(rd_kafka_last_error(), name_ + ": consume");
      }
      for (ssize_t i = 0; i < got; ++i) {
        arrow::Status st = TakeMessage(messages_[i]);
        rd_kafka_message_destroy(messages_[i]);
        if (!st.ok()) {
          for (ssize_t j = i + 1; j < got; ++j) rd_kafka_message_destroy(messages_[j]);
          return st;
        }
      }
      ARROW_RETURN_NOT_OK(deferred_error_);  // set by callbacks served above
      if (got == 0) break;
      taken += got;
    }

    const int64_t now = SteadyNanos();
    if (pending_->size() > 0 &&
        (pending_->size() >= options_.batch_size ||
         now - pending_->first_ns >= options_.max_wait_ms * 1000000 ||
         (bounded_ && AllPartitionsDone()))) {
      ARROW_RETURN_NOT_OK(FlushPending());
    }
    if (now - last_commit_ns_ >= options_.commit_interval_ms * 1000000) {
      ARROW_RETURN_NOT_OK(Commit(/*async=*/true));
    }
    if (TakeReady(out)) return PollResult::kElement;
    if (bounded_ && pending_->size() == 0 && AllPartitionsDone()) {
      ARROW_RETURN_NOT_OK(Commit(/*async=*/false, /*final=*/true));
      return PollResult::kEndOfInput;
    }
    return PollResult::kNotReady;
  }

  /// Hands the next ready batch to `out` and records the positions it completes.
  bool TakeReady(StreamElement* out) {
    while (!ready_.empty()) {
      ReadyElement& front = ready_.front();
      for (const auto& [tp, next] : front.advance) {
        auto it = assignment_.find(tp);
        // A partition revoked meanwhile: its new owner tracks it.
        if (it != assignment_.end()) {
          it->second.delivered_next = std::max(it->second.delivered_next, next);
        }
      }
      const bool has_element = front.element.has_value();
      if (has_element) *out = std::move(*front.element);
      ready_.pop_front();
      if (has_element) return true;
    }
    return false;
  }

  bool AllPartitionsDone() const {
    if (!assignment_received_) return false;
    for (const auto& [tp, state] : assignment_) {
      if (!state.done) return false;
    }
    return true;
  }

  PartitionState* FindState(rd_kafka_topic_t* rkt, int32_t partition) {
    if (rkt == cached_rkt_ && partition == cached_partition_) return cached_state_;
    auto it = assignment_.find({rd_kafka_topic_name(rkt), partition});
    PartitionState* state = it == assignment_.end() ? nullptr : &it->second;
    cached_rkt_ = rkt;
    cached_partition_ = partition;
    cached_state_ = state;
    return state;
  }

  void MarkDoneIfAtEnd(PartitionState* state, int64_t position) {
    if (state->end >= 0 && position >= state->end) state->done = true;
  }

  arrow::Status TakeMessage(rd_kafka_message_t* msg) {
    if (msg->err) {
      if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (msg->rkt) {
          PartitionState* state = FindState(msg->rkt, msg->partition);
          if (state) MarkDoneIfAtEnd(state, msg->offset);
        }
        return arrow::Status::OK();
      }
      char reason[512];
      if (rd_kafka_fatal_error(consumer_.get(), reason, sizeof(reason))) {
        return arrow::Status::IOError("kafka_source ", name_,
                                      ": fatal consumer error: ", reason);
      }
      std::string where =
          msg->rkt ? std::string(" topic '") + rd_kafka_topic_name(msg->rkt) + "'" : "";
      if (msg->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
          msg->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC) {
        if (!IsPattern(options_.topics)) {
          return arrow::Status::IOError(
              "kafka_source ", name_, ":", where,
              " does not exist (any more): ", rd_kafka_message_errstr(msg));
        }
        return arrow::Status::OK();
      }
      // Transient (broker restarts, leader moves): librdkafka retries by itself.
      Log("consumer error" + where + ": " + rd_kafka_message_errstr(msg));
      return arrow::Status::OK();
    }
    PartitionState* state = FindState(msg->rkt, msg->partition);
    if (state == nullptr) {
      // Prefetched before a revoke: its new owner reads it from the committed offset.
      options_.stats->stale_dropped.fetch_add(1, std::memory_order_relaxed);
      return arrow::Status::OK();
    }
    if (state->pending_next >= 0 && msg->offset < state->pending_next) {
      options_.stats->stale_dropped.fetch_add(1, std::memory_order_relaxed);
      return arrow::Status::OK();
    }
    if (state->end >= 0 && msg->offset >= state->end) {
      state->done = true;
      return arrow::Status::OK();
    }
    PendingBatch& p = *pending_;
    if (p.size() == 0) p.first_ns = SteadyNanos();
    if (msg->payload == nullptr) {
      ARROW_RETURN_NOT_OK(p.values.AppendNull());
    } else {
      ARROW_RETURN_NOT_OK(p.values.Append(static_cast<const uint8_t*>(msg->payload),
                                          static_cast<int32_t>(msg->len)));
    }
    if (keep_key_) {
      if (msg->key == nullptr) {
        ARROW_RETURN_NOT_OK(p.keys.AppendNull());
      } else {
        ARROW_RETURN_NOT_OK(p.keys.Append(static_cast<const uint8_t*>(msg->key),
                                          static_cast<int32_t>(msg->key_len)));
      }
    }
    if (want_topic_) ARROW_RETURN_NOT_OK(p.topics.Append(state->topic));
    if (want_partition_) ARROW_RETURN_NOT_OK(p.partitions.Append(msg->partition));
    if (want_offset_) ARROW_RETURN_NOT_OK(p.offsets.Append(msg->offset));
    if (want_timestamp_) {
      rd_kafka_timestamp_type_t type;
      int64_t ts = rd_kafka_message_timestamp(msg, &type);
      if (type == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE) {
        ARROW_RETURN_NOT_OK(p.timestamps.AppendNull());
      } else {
        ARROW_RETURN_NOT_OK(p.timestamps.Append(ts));
      }
    }
    if (keep_headers_) ARROW_RETURN_NOT_OK(AppendHeaders(msg));
    p.states.push_back(state);
    p.message_offsets.push_back(msg->offset);
    state->pending_next = msg->offset + 1;
    MarkDoneIfAtEnd(state, state->pending_next);
    options_.stats->messages.fetch_add(1, std::memory_order_relaxed);
    options_.stats->bytes.fetch_add(static_cast<int64_t>(msg->len + msg->key_len),
                                    std::memory_order_relaxed);
    return arrow::Status::OK();
  }

  arrow::Status AppendHeaders(rd_kafka_message_t* msg) {
    return AppendMessageHeaders(msg, &pending_->headers);
  }

  // --- turning taken messages into a batch ----------------------------------------

  /// Decodes the pending messages, routes bad ones by policy and queues the batch.
  arrow::Status FlushPending() {
    PendingBatch& p = *pending_;
    const int64_t n = p.size();
    if (n == 0) return arrow::Status::OK();
    std::shared_ptr<arrow::Array> values, keys, headers;
    ARROW_RETURN_NOT_OK(p.values.Finish(&values));
    if (keep_key_) ARROW_RETURN_NOT_OK(p.keys.Finish(&keys));
    if (keep_headers_) ARROW_RETURN_NOT_OK(p.headers.Finish(&headers));
    ARROW_ASSIGN_OR_RAISE(
        DecodedBatch decoded,
        decoder_->Decode(static_cast<const arrow::BinaryArray&>(*values)));
    if (!decoded.errors.empty()) {
      ARROW_RETURN_NOT_OK(HandleBadRecords(decoded.errors, p, *values, keys, headers));
    }
    ReadyElement ready;
    for (PartitionState* state : p.states) {
      TopicPartition tp{state->topic, state->partition};
      bool seen = false;
      for (auto& [known, next] : ready.advance) {
        if (known == tp) {
          next = state->pending_next;
          seen = true;
          break;
        }
      }
      if (!seen) ready.advance.emplace_back(std::move(tp), state->pending_next);
    }
    if (decoded.rows && decoded.rows->num_rows() > 0) {
      ARROW_ASSIGN_OR_RAISE(auto batch, WithMetadata(decoded, p, keys, headers, n));
      options_.stats->rows.fetch_add(batch->num_rows(), std::memory_order_relaxed);
      options_.stats->batches.fetch_add(1, std::memory_order_relaxed);
      ready.element = StreamElement::Batch(std::move(batch));
      ready_.push_back(std::move(ready));
    } else {
      ready_.push_back(std::move(ready));
      // Finish the unused builders so the next batch starts empty.
      std::shared_ptr<arrow::Array> unused;
      if (want_topic_) ARROW_RETURN_NOT_OK(p.topics.Finish(&unused));
      if (want_partition_) ARROW_RETURN_NOT_OK(p.partitions.Finish(&unused));
      if (want_offset_) ARROW_RETURN_NOT_OK(p.offsets.Finish(&unused));
      if (want_timestamp_) ARROW_RETURN_NOT_OK(p.timestamps.Finish(&unused));
    }
    // Every message of the batch is now emitted, skipped or dead-lettered.
    for (PartitionState* state : p.states) state->emitted_next = state->pending_next;
    p.states.clear();
    p.message_offsets.clear();
    return arrow::Status::OK();
  }

  arrow::Result<std::shared_ptr<arrow::RecordBatch>> WithMetadata(
      const DecodedBatch& decoded, PendingBatch& p,
      const std::shared_ptr<arrow::Array>& keys,
      const std::shared_ptr<arrow::Array>& headers, int64_t n) {
    const auto& rows = decoded.rows;
    if (metadata_schema_->num_fields() == 0) return rows;
    arrow::ArrayVector meta;
    for (const auto& m : options_.metadata) {
      std::shared_ptr<arrow::Array> a;
      if (m == "key") {
        a = keys;
      } else if (m == "topic") {
        ARROW_RETURN_NOT_OK(p.topics.Finish(&a));
      } else if (m == "partition") {
        ARROW_RETURN_NOT_OK(p.partitions.Finish(&a));
      } else if (m == "offset") {
        ARROW_RETURN_NOT_OK(p.offsets.Finish(&a));
      } else if (m == "timestamp") {
        ARROW_RETURN_NOT_OK(p.timestamps.Finish(&a));
      } else {
        a = headers;
      }
      meta.push_back(std::move(a));
    }
    // One row per message in order is the common case: no gather needed.
    bool identity = rows->num_rows() == n && decoded.row_message != nullptr &&
                    decoded.row_message->length() == n;
    for (int64_t i = 0; identity && i < n; ++i) {
      identity = decoded.row_message->Value(i) == i;
    }
    if (!identity) {
      if (decoded.row_message == nullptr ||
          decoded.row_message->length() != rows->num_rows()) {
        return arrow::Status::Invalid("kafka_source ", name_, ": decoder '",
                                      options_.format.name,
                                      "' returned rows without their message indices");
      }
      arrow::compute::ExecContext exec(pool_);
      for (auto& a : meta) {
        ARROW_ASSIGN_OR_RAISE(
            auto taken,
            arrow::compute::Take(a, decoded.row_message,
                                 arrow::compute::TakeOptions::NoBoundsCheck(), &exec));
        a = taken.make_array();
      }
    }
    if (!output_schema_ || !output_schema_->field(0)->Equals(rows->schema()->field(0)) ||
        output_schema_->num_fields() !=
            rows->num_columns() + metadata_schema_->num_fields()) {
      arrow::FieldVector fields = rows->schema()->fields();
      for (const auto& f : metadata_schema_->fields()) {
        if (rows->schema()->GetFieldIndex(f->name()) >= 0) {
          return arrow::Status::Invalid(
              "kafka_source ", name_, ": metadata column '", f->name(),
              "' clashes with a value column of that name; set metadata_prefix");
        }
        fields.push_back(f);
      }
      output_schema_ = arrow::schema(std::move(fields));
    }
    arrow::ArrayVector columns = rows->columns();
    for (auto& a : meta) columns.push_back(std::move(a));
    return arrow::RecordBatch::Make(output_schema_, rows->num_rows(), std::move(columns));
  }

  arrow::Status HandleBadRecords(const std::vector<DecodeError>& errors, PendingBatch& p,
                                 const arrow::Array& values_array,
                                 const std::shared_ptr<arrow::Array>& keys,
                                 const std::shared_ptr<arrow::Array>& headers) {
    const auto& values = static_cast<const arrow::BinaryArray&>(values_array);
    options_.stats->bad_records.fetch_add(static_cast<int64_t>(errors.size()),
                                          std::memory_order_relaxed);
    for (const auto& e : errors) {
      if (e.message_index < 0 || e.message_index >= p.size()) {
        return arrow::Status::Invalid("kafka_source ", name_,
                                      ": decoder reported an error for message ",
                                      e.message_index, " of ", p.size(), ": ", e.reason);
      }
      const PartitionState* state = p.states[static_cast<size_t>(e.message_index)];
      const int64_t offset = p.message_offsets[static_cast<size_t>(e.message_index)];
      switch (options_.bad_records) {
        case BadRecordPolicy::kFail:
          return arrow::Status::Invalid("kafka_source: bad record in topic '",
                                        state->topic, "' partition ", state->partition,
                                        " offset ", offset, " (format ",
                                        options_.format.name, "): ", e.reason);
        case BadRecordPolicy::kSkip: {
          int64_t count =
              options_.stats->skipped.fetch_add(1, std::memory_order_relaxed) + 1;
          if (count <= 10 || count % 1000 == 0) {
            Log("skipped bad record #" + std::to_string(count) + " at topic '" +
                state->topic + "' partition " + std::to_string(state->partition) +
                " offset " + std::to_string(offset) + ": " + e.reason);
          }
          break;
        }
        case BadRecordPolicy::kDeadLetter:
          ARROW_RETURN_NOT_OK(
              ProduceDeadLetter(*state, offset, e, values, keys, headers));
          break;
      }
    }
    if (dead_letter_) {
      // Offsets of this batch advance only once the dead-letter copies are stored.
      rd_kafka_resp_err_t err = rd_kafka_flush(dead_letter_producer_.get(), 30000);
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR || dead_letter_failed_) {
        return arrow::Status::IOError(
            "kafka_source ", name_, ": dead-letter topic '", options_.dead_letter_topic,
            "' did not take bad records: ",
            dead_letter_failed_ ? dead_letter_error_ : rd_kafka_err2str(err));
      }
    }
    return arrow::Status::OK();
  }

  // --- dead-letter producer ---------------------------------------------------------

  arrow::Status OpenDeadLetterProducer() {
    ClientConfig config = {{"acks", "all"}, {"linger.ms", "5"}};
    for (const auto& [k, v] : options_.dead_letter_config) config[k] = v;
    ARROW_ASSIGN_OR_RAISE(auto conf, MakeConf(options_.bootstrap, config));
    rd_kafka_conf_set_opaque(conf.get(), this);
    rd_kafka_conf_set_dr_msg_cb(conf.get(), &KafkaSourceReader::DeadLetterDelivered);
    ARROW_ASSIGN_OR_RAISE(dead_letter_producer_,
                          MakeClient(RD_KAFKA_PRODUCER, std::move(conf)));
    auto count =
        TopicPartitionCount(dead_letter_producer_.get(), options_.dead_letter_topic);
    if (!count.ok()) {
      return count.status().WithMessage("kafka_source: dead-letter topic: ",
                                        count.status().message());
    }
    return arrow::Status::OK();
  }

  arrow::Status ProduceDeadLetter(const PartitionState& state, int64_t offset,
                                  const DecodeError& error,
                                  const arrow::BinaryArray& values,
                                  const std::shared_ptr<arrow::Array>& keys,
                                  const std::shared_ptr<arrow::Array>& headers) {
    const int64_t i = error.message_index;
    rd_kafka_headers_t* hdrs = rd_kafka_headers_new(8);
    if (headers && headers->IsValid(i)) {
      const auto& map = static_cast<const arrow::MapArray&>(*headers);
      const auto& names = static_cast<const arrow::StringArray&>(*map.keys());
      const auto& items = static_cast<const arrow::BinaryArray&>(*map.items());
      for (int64_t j = map.value_offset(i); j < map.value_offset(i + 1); ++j) {
        std::string_view name = names.GetView(j);
        std::string name_str(name);
        if (items.IsNull(j)) {
          rd_kafka_header_add(hdrs, name_str.c_str(), -1, nullptr, 0);
        } else {
          std::string_view v = items.GetView(j);
          rd_kafka_header_add(hdrs, name_str.c_str(), -1, v.data(),
                              static_cast<ssize_t>(v.size()));
        }
      }
    }
    auto add = [&](const char* name, const std::string& value) {
      rd_kafka_header_add(hdrs, name, -1, value.data(),
                          static_cast<ssize_t>(value.size()));
    };
    add("sabot.error", error.reason);
    add("sabot.format", options_.format.name);
    add("sabot.source.topic", state.topic);
    add("sabot.source.partition", std::to_string(state.partition));
    add("sabot.source.offset", std::to_string(offset));

    std::string_view value;
    const bool has_value = values.IsValid(i);
    if (has_value) value = values.GetView(i);
    std::string_view key;
    bool has_key = false;
    if (keys && keys->IsValid(i)) {
      key = static_cast<const arrow::BinaryArray&>(*keys).GetView(i);
      has_key = true;
    }
    for (;;) {
      rd_kafka_resp_err_t err = rd_kafka_producev(
          dead_letter_producer_.get(),
          RD_KAFKA_V_TOPIC(options_.dead_letter_topic.c_str()),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
          RD_KAFKA_V_VALUE(has_value ? const_cast<char*>(value.data()) : nullptr,
                           has_value ? value.size() : 0),
          RD_KAFKA_V_KEY(has_key ? key.data() : nullptr, has_key ? key.size() : 0),
          RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return arrow::Status::OK();  // owns hdrs
      if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        rd_kafka_poll(dead_letter_producer_.get(), 10);
        continue;
      }
      rd_kafka_headers_destroy(hdrs);
      return KafkaStatus(err, name_ + ": producing to dead-letter topic '" +
                                  options_.dead_letter_topic + "'");
    }
  }

  static void DeadLetterDelivered(rd_kafka_t*, const rd_kafka_message_t* msg,
                                  void* opaque) {
    auto* self = static_cast<KafkaSourceReader*>(opaque);
    if (msg->err) {
      if (!self->dead_letter_failed_) {
        self->dead_letter_error_ = rd_kafka_err2str(msg->err);
      }
      self->dead_letter_failed_ = true;
    } else {
      self->options_.stats->dead_lettered.fetch_add(1, std::memory_order_relaxed);
    }
  }

  // --- offsets ------------------------------------------------------------------------

  /// Commits the emitted offsets. Once the job checkpoints, only the final
  /// commit (close, end of a bounded read) does; the others happen when a
  /// checkpoint completes (NotifyCheckpointComplete).
  arrow::Status Commit(bool async, bool final = false) {
    last_commit_ns_ = SteadyNanos();
    if (!consumer_) return arrow::Status::OK();
    if (checkpointing_ && !final) return arrow::Status::OK();
    PartitionList list(rd_kafka_topic_partition_list_new(8));
    std::vector<PartitionState*> committed;
    for (auto& [tp, state] : assignment_) {
      if (state.emitted_next >= 0 && state.emitted_next != state.committed_next) {
        rd_kafka_topic_partition_list_add(list.get(), state.topic.c_str(),
                                          state.partition)
            ->offset = state.emitted_next;
        committed.push_back(&state);
      }
    }
    if (list->cnt == 0) return arrow::Status::OK();
    options_.stats->commits.fetch_add(1, std::memory_order_relaxed);
    rd_kafka_resp_err_t err = rd_kafka_commit(consumer_.get(), list.get(), async ? 1 : 0);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      // Not fatal: the offsets are committed next time; at worst a restart re-reads.
      options_.stats->commit_failures.fetch_add(1, std::memory_order_relaxed);
      Log(std::string("offset commit failed: ") + rd_kafka_err2str(err));
      return arrow::Status::OK();
    }
    for (PartitionState* s : committed) s->committed_next = s->emitted_next;
    return arrow::Status::OK();
  }

  static void CommitTrampoline(rd_kafka_t*, rd_kafka_resp_err_t err,
                               rd_kafka_topic_partition_list_t*, void* opaque) {
    auto* self = static_cast<KafkaSourceReader*>(opaque);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
      self->options_.stats->commit_failures.fetch_add(1, std::memory_order_relaxed);
      self->Log(std::string("async offset commit failed: ") + rd_kafka_err2str(err));
    }
  }

  static void ErrorTrampoline(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
    auto* self = static_cast<KafkaSourceReader*>(opaque);
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
      char buf[512];
      rd_kafka_fatal_error(rk, buf, sizeof(buf));
      self->SetDeferredError(
          arrow::Status::IOError("kafka_source ", self->name_, ": fatal error: ", buf));
      return;
    }
    // Transient (all brokers down, transport errors): librdkafka reconnects.
    if (self->errors_logged_++ < 20) self->Log(std::string("client error: ") + reason);
  }

  // --- rebalances -------------------------------------------------------------------

  static void RebalanceTrampoline(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                                  rd_kafka_topic_partition_list_t* partitions,
                                  void* opaque) {
    auto* self = static_cast<KafkaSourceReader*>(opaque);
    arrow::Status st = self->OnRebalance(err, partitions);
    if (!st.ok()) self->SetDeferredError(st);
  }

  arrow::Status OnRebalance(rd_kafka_resp_err_t err,
                            rd_kafka_topic_partition_list_t* partitions) {
    const bool cooperative =
        std::string(rd_kafka_rebalance_protocol(consumer_.get())) == "COOPERATIVE";
    options_.stats->rebalances.fetch_add(1, std::memory_order_relaxed);
    cached_rkt_ = nullptr;
    cached_state_ = nullptr;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      arrow::Status st = PrepareAssignment(partitions);
      rd_kafka_error_t* error = nullptr;
      rd_kafka_resp_err_t assign_err = RD_KAFKA_RESP_ERR_NO_ERROR;
      if (cooperative) {
        error = rd_kafka_incremental_assign(consumer_.get(), partitions);
      } else {
        assign_err = rd_kafka_assign(consumer_.get(), partitions);
      }
      assignment_received_ = true;
      if (error) {
        std::string msg = rd_kafka_error_string(error);
        rd_kafka_error_destroy(error);
        return arrow::Status::IOError("kafka_source ", name_, ": assign failed: ", msg);
      }
      ARROW_RETURN_NOT_OK(KafkaStatus(assign_err, name_ + ": assign"));
      return st;
    }
    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
      arrow::Status st;
      const bool lost = rd_kafka_assignment_lost(consumer_.get());
      if (!closing_) {
        // Finish the in-flight batch: its messages are emitted by this instance,
        // and their offsets committed before the partitions move.
        st = FlushPending();
      }
      if (st.ok() && !lost && commit_on_revoke_) st = Commit(/*async=*/false);
      for (int i = 0; i < partitions->cnt; ++i) {
        if (assignment_.erase(
                {partitions->elems[i].topic, partitions->elems[i].partition})) {
          options_.stats->assigned.fetch_sub(1, std::memory_order_relaxed);
        }
      }
      {
        std::lock_guard<std::mutex> lock(pause_mutex_);
        RebuildPauseList();
      }
      if (cooperative) {
        rd_kafka_error_t* error =
            rd_kafka_incremental_unassign(consumer_.get(), partitions);
        if (error) rd_kafka_error_destroy(error);
      } else {
        rd_kafka_assign(consumer_.get(), nullptr);
      }
      return st;
    }
    rd_kafka_assign(consumer_.get(), nullptr);
    options_.stats->assigned.fetch_sub(static_cast<int64_t>(assignment_.size()),
                                       std::memory_order_relaxed);
    assignment_.clear();
    return KafkaStatus(err, name_ + ": rebalance");
  }

  /// Sets each newly assigned partition's start offset and (bounded) end offset.
  /// Sets each newly assigned partition's start offset (concrete, so that a
  /// checkpoint can record it even before the partition delivered anything)
  /// and (bounded) end offset: the restored offset for the first owner in this
  /// process after a restore, the start position for the first owner otherwise,
  /// the committed offset (else `reset`) for a partition that moved between
  /// instances of this job.
  arrow::Status PrepareAssignment(rd_kafka_topic_partition_list_t* partitions) {
    std::vector<TopicPartition> first, moved, added;
    for (int i = 0; i < partitions->cnt; ++i) {
      const rd_kafka_topic_partition_t& tp = partitions->elems[i];
      TopicPartition key{tp.topic, tp.partition};
      PartitionState state;
      state.topic = tp.topic;
      state.partition = tp.partition;
      auto restored = restored_.find(key);
      const bool restorable = restored != restored_.end() && restored->second.offset >= 0;
      if (restorable) options_.shared->Claim(state.topic, state.partition);
      if (!options_.shared->MarkStarted(tp.topic, tp.partition)) {
        moved.push_back(key);
      } else if (restorable) {
        state.start_offset = restored->second.offset;
        options_.stats->restored_partitions.fetch_add(1, std::memory_order_relaxed);
      } else {
        first.push_back(key);
      }
      if (assignment_.emplace(key, std::move(state)).second) {
        options_.stats->assigned.fetch_add(1, std::memory_order_relaxed);
        added.push_back(key);
      }
    }
    arrow::Status st = ResolveStartOffsets(first, options_.start);
    if (st.ok()) st = ResolveStartOffsets(moved, StartPosition::kCommitted);
    for (int i = 0; i < partitions->cnt; ++i) {
      const PartitionState& state =
          assignment_.at({partitions->elems[i].topic, partitions->elems[i].partition});
      partitions->elems[i].offset =
          state.start_offset >= 0 ? state.start_offset : RD_KAFKA_OFFSET_INVALID;
    }
    for (const auto& key : added) {
      if (st.ok()) st = SetBoundedEnd(&assignment_.at(key));
    }
    std::lock_guard<std::mutex> lock(pause_mutex_);
    RebuildPauseList();
    return st;
  }

  /// Bounded mode: the offset to stop before (explicit, restored, or the end
  /// offset the partition had when this job first read it).
  arrow::Status SetBoundedEnd(PartitionState* state) {
    if (!bounded_) return arrow::Status::OK();
    auto explicit_end = options_.end_offsets.find({state->topic, state->partition});
    auto restored = restored_.find({state->topic, state->partition});
    int64_t end;
    if (explicit_end != options_.end_offsets.end()) {
      end = explicit_end->second;
    } else if (restored != restored_.end() && restored->second.end >= 0) {
      end = restored->second.end;  // the same end as before the restore
    } else {
      int64_t low = 0, high = 0;
      ARROW_RETURN_NOT_OK(KafkaStatus(
          rd_kafka_query_watermark_offsets(consumer_.get(), state->topic.c_str(),
                                           state->partition, &low, &high, 10000),
          name_ + ": end offset of " + state->topic + "[" +
              std::to_string(state->partition) + "]"));
      end = high;
    }
    state->end = options_.shared->EndOffset(state->topic, state->partition, end);
    if (state->end <= 0 ||
        (state->start_offset >= 0 && state->start_offset >= state->end)) {
      state->done = true;
    }
    return arrow::Status::OK();
  }

  // --- static assignment --------------------------------------------------------------

  /// Takes this instance's share of the partitions (k-th of the sorted list to
  /// instance k % parallelism) and starts each at a concrete offset: the
  /// checkpointed one, else the configured start position.
  arrow::Status AssignStatic() {
    std::vector<TopicPartition> all;
    for (const auto& topic : options_.topics) {
      ARROW_ASSIGN_OR_RAISE(int32_t count, TopicPartitionCount(consumer_.get(), topic));
      for (int32_t p = 0; p < count; ++p) all.emplace_back(topic, p);
    }
    std::sort(all.begin(), all.end());
    std::vector<TopicPartition> fresh;
    for (size_t k = static_cast<size_t>(instance_); k < all.size();
         k += static_cast<size_t>(parallelism_)) {
      const TopicPartition& tp = all[k];
      options_.shared->MarkStarted(tp.first, tp.second);
      PartitionState state;
      state.topic = tp.first;
      state.partition = tp.second;
      auto restored = restored_.find(tp);
      if (restored != restored_.end() && restored->second.offset >= 0) {
        state.start_offset = restored->second.offset;
        options_.stats->restored_partitions.fetch_add(1, std::memory_order_relaxed);
      } else {
        fresh.push_back(tp);
      }
      assignment_.emplace(tp, std::move(state));
      options_.stats->assigned.fetch_add(1, std::memory_order_relaxed);
    }
    ARROW_RETURN_NOT_OK(ResolveStartOffsets(fresh, options_.start));
    PartitionList list(
        rd_kafka_topic_partition_list_new(static_cast<int>(assignment_.size())));
    for (auto& [tp, state] : assignment_) {
      ARROW_RETURN_NOT_OK(SetBoundedEnd(&state));
      rd_kafka_topic_partition_list_add(list.get(), state.topic.c_str(), state.partition)
          ->offset = state.start_offset;
    }
    ARROW_RETURN_NOT_OK(
        KafkaStatus(rd_kafka_assign(consumer_.get(), list.get()), name_ + ": assign"));
    assignment_received_ = true;
    std::lock_guard<std::mutex> lock(pause_mutex_);
    RebuildPauseList();
    return arrow::Status::OK();
  }

  /// Sets the start offset of each partition in `fresh` from `start` (committed
  /// offset, else `reset`; earliest; latest; timestamp), so that even a
  /// partition that delivered nothing yet has a position to checkpoint.
  arrow::Status ResolveStartOffsets(const std::vector<TopicPartition>& fresh,
                                    StartPosition start) {
    if (fresh.empty()) return arrow::Status::OK();
    auto where = [&](const TopicPartition& tp) {
      return tp.first + "[" + std::to_string(tp.second) + "]";
    };
    auto watermark = [&](const TopicPartition& tp, bool high) -> arrow::Result<int64_t> {
      int64_t low = 0, hi = 0;
      ARROW_RETURN_NOT_OK(
          KafkaStatus(rd_kafka_query_watermark_offsets(consumer_.get(), tp.first.c_str(),
                                                       tp.second, &low, &hi, 10000),
                      name_ + ": offsets of " + where(tp)));
      return high ? hi : low;
    };
    PartitionList query(
        rd_kafka_topic_partition_list_new(static_cast<int>(fresh.size())));
    for (const auto& tp : fresh) {
      rd_kafka_topic_partition_list_add(query.get(), tp.first.c_str(), tp.second)
          ->offset = start == StartPosition::kTimestamp ? options_.start_timestamp_ms : 0;
    }
    if (start == StartPosition::kCommitted) {
      ARROW_RETURN_NOT_OK(
          KafkaStatus(rd_kafka_committed(consumer_.get(), query.get(), 10000),
                      name_ + ": committed offsets"));
    } else if (start == StartPosition::kTimestamp) {
      ARROW_RETURN_NOT_OK(
          KafkaStatus(rd_kafka_offsets_for_times(consumer_.get(), query.get(), 10000),
                      name_ + ": offsets for timestamp " +
                          std::to_string(options_.start_timestamp_ms)));
    }
    for (int i = 0; i < query->cnt; ++i) {
      const auto& r = query->elems[i];
      TopicPartition tp{r.topic, r.partition};
      ARROW_RETURN_NOT_OK(KafkaStatus(r.err, name_ + ": start offset of " + where(tp)));
      // Committed / timestamp offsets when there is one; else the low or high
      // watermark (no committed offset: `reset`; no message at or after the
      // timestamp: the end).
      int64_t offset = -1;
      bool from_end = false;
      switch (start) {
        case StartPosition::kCommitted:
          offset = r.offset;
          from_end = options_.reset == "latest";
          break;
        case StartPosition::kEarliest:
          break;
        case StartPosition::kLatest:
          from_end = true;
          break;
        case StartPosition::kTimestamp:
          offset = r.offset;
          from_end = true;
          break;
      }
      if (offset < 0) {
        ARROW_ASSIGN_OR_RAISE(offset, watermark(tp, from_end));
      }
      assignment_.at(tp).start_offset = offset;
    }
    return arrow::Status::OK();
  }

  // --- checkpoints --------------------------------------------------------------------

  struct RestoredPosition {
    int64_t offset = -1;
    int64_t end = -1;
  };

  arrow::Status ReadRestoredOffsets(SnapshotReader* restore) {
    checkpointing_ = true;
    ARROW_ASSIGN_OR_RAISE(auto batches, restore->ReadOperatorState(kKafkaOffsetsState));
    const auto expected = OffsetsSchema();
    std::map<TopicPartition, int64_t> offsets;
    for (const auto& batch : batches) {
      if (!batch->schema()->Equals(*expected, /*check_metadata=*/false)) {
        return arrow::Status::Invalid(
            "kafka_source ", name_, ": checkpoint ", restore->checkpoint_id(),
            " holds table '", kKafkaOffsetsState, "' with schema ",
            batch->schema()->ToString(), ", expected ", expected->ToString());
      }
      const auto& topics = static_cast<const arrow::StringArray&>(*batch->column(0));
      const auto& partitions = static_cast<const arrow::Int32Array&>(*batch->column(1));
      const auto& next = static_cast<const arrow::Int64Array&>(*batch->column(2));
      const auto& ends = static_cast<const arrow::Int64Array&>(*batch->column(3));
      for (int64_t i = 0; i < batch->num_rows(); ++i) {
        TopicPartition tp{std::string(topics.GetView(i)), partitions.Value(i)};
        auto [it, inserted] =
            restored_.emplace(tp, RestoredPosition{next.Value(i), ends.Value(i)});
        // Written twice only with group assignment (a partition that moved
        // between two instances' barriers): the lower offset loses nothing.
        if (!inserted) it->second.offset = std::min(it->second.offset, next.Value(i));
        offsets[tp] = it->second.offset;
      }
    }
    if (!static_)
      options_.shared->SetRestored(restore->checkpoint_id(), std::move(offsets));
    return arrow::Status::OK();
  }

  static std::shared_ptr<arrow::Schema> OffsetsSchema() {
    static const auto schema =
        arrow::schema({arrow::field("topic", arrow::utf8(), false),
                       arrow::field("partition", arrow::int32(), false),
                       arrow::field("offset", arrow::int64(), false),
                       arrow::field("end", arrow::int64(), false)});
    return schema;
  }

 public:
  arrow::Status SnapshotState(SnapshotWriter* writer) override {
    checkpointing_ = true;
    arrow::StringBuilder topics(pool_);
    arrow::Int32Builder partitions(pool_);
    arrow::Int64Builder offsets(pool_), ends(pool_);
    std::vector<std::pair<TopicPartition, int64_t>> owned;
    auto add = [&](const TopicPartition& tp, int64_t next, int64_t end) -> arrow::Status {
      ARROW_RETURN_NOT_OK(topics.Append(tp.first));
      ARROW_RETURN_NOT_OK(partitions.Append(tp.second));
      ARROW_RETURN_NOT_OK(offsets.Append(next));
      return ends.Append(end);
    };
    for (const auto& [tp, state] : assignment_) {
      const int64_t next =
          state.delivered_next >= 0 ? state.delivered_next : state.start_offset;
      if (next < 0) continue;  // group assignment, nothing read yet: position unknown
      ARROW_RETURN_NOT_OK(add(tp, next, state.end));
      owned.emplace_back(tp, next);
    }
    if (!static_ && instance_ == 0) {
      // Restored partitions nobody here was assigned yet keep their offsets.
      for (const auto& [tp, next] : options_.shared->Unclaimed()) {
        if (assignment_.count(tp)) continue;
        ARROW_RETURN_NOT_OK(add(tp, next, restored_.at(tp).end));
      }
    }
    std::shared_ptr<arrow::Array> t, p, o, e;
    ARROW_RETURN_NOT_OK(topics.Finish(&t));
    ARROW_RETURN_NOT_OK(partitions.Finish(&p));
    ARROW_RETURN_NOT_OK(offsets.Finish(&o));
    ARROW_RETURN_NOT_OK(ends.Finish(&e));
    ARROW_RETURN_NOT_OK(writer->WriteOperatorState(
        kKafkaOffsetsState,
        arrow::RecordBatch::Make(OffsetsSchema(), t->length(), {t, p, o, e})));
    snapshots_[writer->checkpoint_id()] = std::move(owned);
    return arrow::Status::OK();
  }

  /// Commits the offsets of the newest snapshot <= checkpoint_id to the group
  /// (asynchronously; for monitoring only: recovery reads the checkpoint).
  arrow::Status NotifyCheckpointComplete(int64_t checkpoint_id) override {
    auto it = snapshots_.upper_bound(checkpoint_id);
    if (it == snapshots_.begin()) return arrow::Status::OK();
    --it;
    std::vector<std::pair<TopicPartition, int64_t>> offsets = std::move(it->second);
    snapshots_.erase(snapshots_.begin(), std::next(it));
    if (!consumer_) return arrow::Status::OK();
    PartitionList list(
        rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size())));
    for (const auto& [tp, next] : offsets) {
      if (!assignment_.count(tp)) continue;  // moved away since (group assignment)
      rd_kafka_topic_partition_list_add(list.get(), tp.first.c_str(), tp.second)->offset =
          next;
    }
    if (list->cnt == 0) return arrow::Status::OK();
    options_.stats->checkpoint_commits.fetch_add(1, std::memory_order_relaxed);
    rd_kafka_resp_err_t err = rd_kafka_commit(consumer_.get(), list.get(), /*async=*/1);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      options_.stats->commit_failures.fetch_add(1, std::memory_order_relaxed);
      Log("offset commit of checkpoint " + std::to_string(checkpoint_id) +
          " failed: " + rd_kafka_err2str(err));
    }
    return arrow::Status::OK();
  }

 private:
  // --- backpressure: pausing fetches while the runtime does not poll ------------------

  void EnterPoll() {
    std::lock_guard<std::mutex> lock(pause_mutex_);
    in_poll_ = true;
    if (paused_) {
      if (pause_list_ && consumer_)
        rd_kafka_resume_partitions(consumer_.get(), pause_list_.get());
      paused_ = false;
    }
  }

  void LeavePoll() {
    std::lock_guard<std::mutex> lock(pause_mutex_);
    last_poll_ns_.store(SteadyNanos());
    in_poll_ = false;
  }

  void RebuildPauseList() {
    if (paused_ && pause_list_)
      rd_kafka_resume_partitions(consumer_.get(), pause_list_.get());
    paused_ = false;
    pause_list_.reset(
        rd_kafka_topic_partition_list_new(static_cast<int>(assignment_.size())));
    for (const auto& [tp, state] : assignment_) {
      rd_kafka_topic_partition_list_add(pause_list_.get(), state.topic.c_str(),
                                        state.partition);
    }
  }

  void WatchdogLoop() {
    const auto period =
        std::chrono::milliseconds(std::max<int64_t>(options_.pause_after_ms / 2, 1));
    std::unique_lock<std::mutex> lock(pause_mutex_);
    while (!stop_watchdog_) {
      watchdog_cv_.wait_for(lock, period);
      if (stop_watchdog_) break;
      if (in_poll_ || paused_ || !pause_list_ || pause_list_->cnt == 0) continue;
      if (SteadyNanos() - last_poll_ns_.load() < options_.pause_after_ms * 1000000)
        continue;
      // Downstream is backpressured: stop fetching rather than buffer without bound.
      rd_kafka_pause_partitions(consumer_.get(), pause_list_.get());
      paused_ = true;
      options_.stats->pauses.fetch_add(1, std::memory_order_relaxed);
    }
  }

  void StopWatchdog() {
    {
      std::lock_guard<std::mutex> lock(pause_mutex_);
      stop_watchdog_ = true;
    }
    watchdog_cv_.notify_all();
    if (watchdog_.joinable()) watchdog_.join();
  }

  // --- misc ---------------------------------------------------------------------------

  void SetDeferredError(const arrow::Status& st) {
    if (deferred_error_.ok()) deferred_error_ = st;
  }

  void Log(const std::string& line) const {
    std::fprintf(stderr, "sabot kafka_source %s: %s\n", name_.c_str(), line.c_str());
  }

  static constexpr int64_t kConsumeChunk = 1024;

  const KafkaSourceOptions& options_;
  int instance_, parallelism_;
  std::string name_ = "kafka_source";
  arrow::MemoryPool* pool_ = arrow::default_memory_pool();
  std::unique_ptr<Decoder> decoder_;
  std::shared_ptr<arrow::Schema> metadata_schema_;
  std::shared_ptr<arrow::Schema> output_schema_;
  bool want_key_ = false, want_topic_ = false, want_partition_ = false,
       want_offset_ = false, want_timestamp_ = false, want_headers_ = false;
  bool keep_key_ = false, keep_headers_ = false;
  bool dead_letter_ = false;
  bool bounded_ = false;

  KafkaHandle consumer_;
  rd_kafka_queue_t* queue_ = nullptr;
  rd_kafka_message_t* messages_[kConsumeChunk];
  std::map<std::pair<std::string, int32_t>, PartitionState> assignment_;
  bool assignment_received_ = false;
  rd_kafka_topic_t* cached_rkt_ = nullptr;
  int32_t cached_partition_ = -1;
  PartitionState* cached_state_ = nullptr;

  std::unique_ptr<PendingBatch> pending_;
  std::deque<ReadyElement> ready_;
  bool static_ = false;
  /// The job checkpoints (a snapshot was taken or state restored): offsets are
  /// committed on checkpoint completion only.
  bool checkpointing_ = false;
  std::map<TopicPartition, RestoredPosition> restored_;
  /// checkpoint id -> the offsets this instance snapshotted for it
  std::map<int64_t, std::vector<std::pair<TopicPartition, int64_t>>> snapshots_;
  int64_t last_commit_ns_ = 0;
  bool closing_ = false;
  bool commit_on_revoke_ = true;
  arrow::Status deferred_error_;
  int errors_logged_ = 0;

  KafkaHandle dead_letter_producer_;
  bool dead_letter_failed_ = false;
  std::string dead_letter_error_;

  // Guarded by pause_mutex_ (shared with the watchdog thread).
  std::mutex pause_mutex_;
  std::condition_variable watchdog_cv_;
  std::thread watchdog_;
  bool stop_watchdog_ = false;
  bool in_poll_ = false;
  bool paused_ = false;
  PartitionList pause_list_;
  std::atomic<int64_t> last_poll_ns_{0};
};

}  // namespace

void RegisterKafkaSource(OperatorRegistry* registry) {
  ARROW_CHECK_OK(registry->AddSource("kafka_source",
                                     [](const PlanNode& node, int i, int p)
                                         -> arrow::Result<std::unique_ptr<SourceReader>> {
                                       return std::make_unique<KafkaSourceReader>(
                                           node.options_as<KafkaSourceOptions>(), i, p);
                                     }));
}

}  // namespace sabot::kafka
