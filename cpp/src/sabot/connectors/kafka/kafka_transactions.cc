#include "sabot/connectors/kafka/kafka_transactions.h"

#include <arrow/array.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sstream>
#include <string_view>
#include <thread>

namespace sabot::kafka {

namespace {

struct ErrorDeleter {
  void operator()(rd_kafka_error_t* e) const { rd_kafka_error_destroy(e); }
};
using ErrorPtr = std::unique_ptr<rd_kafka_error_t, ErrorDeleter>;

struct GroupMetadataDeleter {
  void operator()(rd_kafka_consumer_group_metadata_t* m) const {
    rd_kafka_consumer_group_metadata_destroy(m);
  }
};

int64_t SteadyMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string Describe(const rd_kafka_error_t* e) {
  std::string s = std::string(rd_kafka_error_name(e)) + ": " + rd_kafka_error_string(e);
  if (rd_kafka_error_is_fatal(e)) s += " (fatal)";
  if (rd_kafka_error_is_retriable(e)) s += " (retryable)";
  if (rd_kafka_error_txn_requires_abort(e)) s += " (transaction must abort)";
  return s;
}

/// The marker's partition: partition 0 of the sink's topic (offset = checkpoint id).
PartitionList MarkerPartition(const std::string& topic, int64_t offset) {
  PartitionList list(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), 0)->offset = offset;
  return list;
}

}  // namespace

std::shared_ptr<arrow::Schema> MessageSchema() {
  static const auto schema = arrow::schema(
      {arrow::field("key", arrow::binary()), arrow::field("value", arrow::binary()),
       arrow::field("headers", arrow::map(arrow::utf8(), arrow::binary()))});
  return schema;
}

std::string TransactionalId(const std::string& job_name, const std::string& uid,
                            int instance) {
  return job_name + "-" + uid + "-" + std::to_string(instance);
}

std::string MarkerGroup(const std::string& transactional_id) {
  return transactional_id + "-commits";
}

TransactionalProducer::~TransactionalProducer() {
  if (topic_) rd_kafka_topic_destroy(topic_);
  // An open transaction (only while Commit runs, i.e. never here unless the
  // job failed inside it) is aborted by the next producer with this id, or by
  // the broker after transaction.timeout.ms.
  if (producer_) rd_kafka_purge(producer_.get(), RD_KAFKA_PURGE_F_QUEUE);
}

arrow::Result<std::unique_ptr<TransactionalProducer>> TransactionalProducer::Open(
    const std::string& bootstrap, const ClientConfig& config,
    const std::string& transactional_id, const std::string& topic,
    const std::string& name, int64_t timeout_ms) {
  std::unique_ptr<TransactionalProducer> p(new TransactionalProducer());
  p->bootstrap_ = bootstrap;
  p->transactional_id_ = transactional_id;
  p->topic_name_ = topic;
  p->name_ = name;
  p->timeout_ms_ = timeout_ms;
  ClientConfig c = {
      // Kafka's Java default partitioner for keyed messages (murmur2), as the
      // at-least-once sink.
      {"partitioner", "murmur2_random"},
  };
  for (const auto& [k, v] : config) c[k] = v;
  c["transactional.id"] = transactional_id;
  c["enable.idempotence"] = "true";
  c["acks"] = "all";
  ARROW_ASSIGN_OR_RAISE(auto conf, MakeConf(bootstrap, c));
  rd_kafka_conf_set_opaque(conf.get(), p.get());
  rd_kafka_conf_set_dr_msg_cb(conf.get(), &TransactionalProducer::Delivered);
  ARROW_ASSIGN_OR_RAISE(p->producer_, MakeClient(RD_KAFKA_PRODUCER, std::move(conf)));
  auto count = TopicPartitionCount(p->producer_.get(), topic);
  if (!count.ok()) {
    return count.status().WithMessage(name, ": cannot write topic '", topic, "' at ",
                                      bootstrap, ": ", count.status().message());
  }
  p->topic_ = rd_kafka_topic_new(p->producer_.get(), topic.c_str(), nullptr);
  if (p->topic_ == nullptr) {
    return KafkaStatus(rd_kafka_last_error(), name + ": topic handle");
  }
  // Fences older producers with this id; resolves their open transaction.
  const int64_t deadline = SteadyMillis() + timeout_ms;
  for (;;) {
    ErrorPtr error(rd_kafka_init_transactions(
        p->producer_.get(), static_cast<int>(std::max<int64_t>(1000, timeout_ms))));
    if (!error) break;
    if (rd_kafka_error_is_retriable(error.get()) && SteadyMillis() < deadline) continue;
    return arrow::Status::IOError(name, ": init_transactions for transactional id '",
                                  transactional_id, "' failed: ", Describe(error.get()));
  }
  return p;
}

arrow::Result<int64_t> TransactionalProducer::ReadMarker() {
  const std::string group = MarkerGroup(transactional_id_);
  const int64_t deadline = SteadyMillis() + timeout_ms_;
  for (;;) {
    PartitionList partitions = MarkerPartition(topic_name_, RD_KAFKA_OFFSET_INVALID);
    rd_kafka_ListConsumerGroupOffsets_t* request =
        rd_kafka_ListConsumerGroupOffsets_new(group.c_str(), partitions.get());
    rd_kafka_AdminOptions_t* options = rd_kafka_AdminOptions_new(
        producer_.get(), RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS);
    char errstr[256];
    rd_kafka_AdminOptions_set_request_timeout(options, 10000, errstr, sizeof(errstr));
    // Offsets of a transaction still in flight are reported as unstable.
    ErrorPtr set(rd_kafka_AdminOptions_set_require_stable_offsets(options, 1));
    rd_kafka_queue_t* queue = rd_kafka_queue_new(producer_.get());
    rd_kafka_ListConsumerGroupOffsets(producer_.get(), &request, 1, options, queue);
    rd_kafka_ListConsumerGroupOffsets_destroy(request);
    rd_kafka_AdminOptions_destroy(options);
    rd_kafka_event_t* event = rd_kafka_queue_poll(queue, 15000);
    rd_kafka_queue_destroy(queue);

    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__TIMED_OUT;
    std::string reason = "no answer";
    int64_t marker = -1;
    if (event) {
      err = rd_kafka_event_error(event);
      if (err) reason = rd_kafka_event_error_string(event);
      const auto* result = rd_kafka_event_ListConsumerGroupOffsets_result(event);
      size_t n = 0;
      const rd_kafka_group_result_t** groups =
          result ? rd_kafka_ListConsumerGroupOffsets_result_groups(result, &n) : nullptr;
      if (!err && n == 1) {
        if (const rd_kafka_error_t* ge = rd_kafka_group_result_error(groups[0])) {
          err = rd_kafka_error_code(ge);
          reason = rd_kafka_error_string(ge);
        } else {
          const rd_kafka_topic_partition_list_t* parts =
              rd_kafka_group_result_partitions(groups[0]);
          if (parts && parts->cnt == 1) {
            err = parts->elems[0].err;
            if (err) reason = rd_kafka_err2str(err);
            marker = parts->elems[0].offset;
          }
        }
      }
      rd_kafka_event_destroy(event);
    }
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return marker < 0 ? -1 : marker;
    const bool retry = err == RD_KAFKA_RESP_ERR_UNSTABLE_OFFSET_COMMIT ||
                       err == RD_KAFKA_RESP_ERR__TIMED_OUT || IsRetryable(err) ||
                       err == RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS ||
                       err == RD_KAFKA_RESP_ERR_NOT_COORDINATOR ||
                       err == RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE;
    if (!retry || SteadyMillis() >= deadline) {
      return arrow::Status::IOError(name_, ": cannot read the commit marker (group '",
                                    group, "', topic '", topic_name_,
                                    "' partition 0): ", reason);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

arrow::Status TransactionalProducer::Produce(const arrow::RecordBatch& batch) {
  const auto& keys = static_cast<const arrow::BinaryArray&>(*batch.column(0));
  const auto& values = static_cast<const arrow::BinaryArray&>(*batch.column(1));
  const auto& headers = static_cast<const arrow::MapArray&>(*batch.column(2));
  const auto* names = headers.null_count() == headers.length()
                          ? nullptr
                          : static_cast<const arrow::StringArray*>(headers.keys().get());
  const auto* items =
      names ? static_cast<const arrow::BinaryArray*>(headers.items().get()) : nullptr;
  for (int64_t i = 0; i < batch.num_rows(); ++i) {
    rd_kafka_headers_t* hdrs = nullptr;
    if (names && headers.IsValid(i)) {
      hdrs = rd_kafka_headers_new(
          static_cast<size_t>(headers.value_offset(i + 1) - headers.value_offset(i)));
      for (int64_t j = headers.value_offset(i); j < headers.value_offset(i + 1); ++j) {
        std::string name(names->GetView(j));
        if (items->IsNull(j)) {
          rd_kafka_header_add(hdrs, name.c_str(), -1, nullptr, 0);
        } else {
          std::string_view v = items->GetView(j);
          rd_kafka_header_add(hdrs, name.c_str(), -1, v.data(),
                              static_cast<ssize_t>(v.size()));
        }
      }
    }
    std::string_view value, key;
    const bool has_value = values.IsValid(i);
    if (has_value) value = values.GetView(i);
    const bool has_key = keys.IsValid(i);
    if (has_key) key = keys.GetView(i);
    for (;;) {
      rd_kafka_resp_err_t err = rd_kafka_producev(
          producer_.get(), RD_KAFKA_V_RKT(topic_),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
          RD_KAFKA_V_VALUE(has_value ? const_cast<char*>(value.data()) : nullptr,
                           has_value ? value.size() : 0),
          RD_KAFKA_V_KEY(has_key ? key.data() : nullptr, has_key ? key.size() : 0),
          RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;  // librdkafka owns hdrs now
      if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        rd_kafka_poll(producer_.get(), 10);
        continue;
      }
      if (hdrs) rd_kafka_headers_destroy(hdrs);
      return KafkaStatus(err, name_ + ": producing to topic '" + topic_name_ + "'");
    }
    ++produced_;
  }
  rd_kafka_poll(producer_.get(), 0);
  return arrow::Status::OK();
}

arrow::Result<bool> TransactionalProducer::Abort(const std::string& why) {
  std::fprintf(stderr, "sabot kafka_sink %s: aborting transaction of '%s': %s\n",
               name_.c_str(), transactional_id_.c_str(), why.c_str());
  ErrorPtr error(
      rd_kafka_abort_transaction(producer_.get(), static_cast<int>(timeout_ms_)));
  if (error) {
    return arrow::Status::IOError(name_, ": aborting the transaction of '",
                                  transactional_id_, "' failed: ", Describe(error.get()),
                                  " (after: ", why, ")");
  }
  return false;
}

arrow::Result<bool> TransactionalProducer::Commit(
    const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches, int64_t marker) {
  auto fail = [&](const std::string& step, const rd_kafka_error_t* e) {
    std::string extra;
    if (rd_kafka_error_code(e) == RD_KAFKA_RESP_ERR__FENCED ||
        rd_kafka_error_code(e) == RD_KAFKA_RESP_ERR_PRODUCER_FENCED) {
      extra = " (a newer producer with this transactional id took over)";
    }
    return arrow::Status::IOError(name_, ": ", step, " for transactional id '",
                                  transactional_id_, "' failed: ", Describe(e), extra);
  };
  failed_ = 0;
  {
    ErrorPtr error(rd_kafka_begin_transaction(producer_.get()));
    if (error) return fail("begin_transaction", error.get());
  }
  for (const auto& batch : batches) {
    arrow::Status st = Produce(*batch);
    if (!st.ok()) {
      ARROW_ASSIGN_OR_RAISE(bool ignored, Abort(st.ToString()));
      (void)ignored;
      return false;
    }
  }
  const int64_t deadline = SteadyMillis() + timeout_ms_;
  {
    PartitionList offsets = MarkerPartition(topic_name_, marker);
    std::unique_ptr<rd_kafka_consumer_group_metadata_t, GroupMetadataDeleter> group(
        rd_kafka_consumer_group_metadata_new(MarkerGroup(transactional_id_).c_str()));
    for (;;) {
      ErrorPtr error(rd_kafka_send_offsets_to_transaction(
          producer_.get(), offsets.get(), group.get(), static_cast<int>(timeout_ms_)));
      if (!error) break;
      if (rd_kafka_error_txn_requires_abort(error.get()))
        return Abort(Describe(error.get()));
      if (rd_kafka_error_is_retriable(error.get()) && SteadyMillis() < deadline) continue;
      if (rd_kafka_error_is_fatal(error.get())) return fail("send_offsets", error.get());
      return Abort(Describe(error.get()));
    }
  }
  // Once EndTxn may have reached the coordinator the outcome is unknown until
  // it answers: retry the commit itself, never abort it.
  for (;;) {
    ErrorPtr error(
        rd_kafka_commit_transaction(producer_.get(), static_cast<int>(timeout_ms_)));
    if (!error) break;
    if (rd_kafka_error_txn_requires_abort(error.get())) {
      std::string why = Describe(error.get());
      if (failed_ > 0) why += "; first failed delivery: " + first_error_;
      return Abort(why);
    }
    if (rd_kafka_error_is_retriable(error.get()) && SteadyMillis() < deadline) continue;
    return fail("commit_transaction", error.get());
  }
  return true;
}

void TransactionalProducer::Delivered(rd_kafka_t*, const rd_kafka_message_t* msg,
                                      void* opaque) {
  auto* self = static_cast<TransactionalProducer*>(opaque);
  if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) return;
  if (self->failed_++ == 0) {
    std::ostringstream s;
    s << "partition " << msg->partition << ": " << rd_kafka_err2str(msg->err);
    self->first_error_ = s.str();
  }
}

}  // namespace sabot::kafka
