// Python bindings of the Kafka connector. Options arrive as a dict built by
// python/sabot/kafka.py (which documents them); a bad Status becomes a Python
// RuntimeError (ValueError for bad options), only here at the binding edge.
#include "sabot/python/kafka_bindings.h"

#include <arrow/c/abi.h>
#include <arrow/c/bridge.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/unique_ptr.h>
#include <nanobind/stl/vector.h>

#include <stdexcept>
#include <string>

#include "sabot/api/datastream.h"
#include "sabot/connectors/kafka/batch_consumer.h"
#include "sabot/connectors/kafka/kafka_client.h"
#include "sabot/connectors/kafka/kafka_sink.h"
#include "sabot/connectors/kafka/kafka_source.h"
#include "sabot/python/binding_util.h"
#include "sabot/python/faust_columns.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace sabot {
namespace {

using py::Check;
using py::SchemaFromCapsule;
using py::Unwrap;

kafka::ClientConfig ConfigFromDict(const nb::dict& d) {
  kafka::ClientConfig config;
  for (auto [k, v] : d) {
    config[nb::cast<std::string>(nb::str(k))] = nb::cast<std::string>(nb::str(v));
  }
  return config;
}

FormatOptions FormatFromDict(const nb::dict& d) {
  FormatOptions f;
  for (auto [k, v] : d) {
    std::string key = nb::cast<std::string>(k);
    if (v.is_none()) continue;
    if (key == "name") {
      f.name = nb::cast<std::string>(v);
    } else if (key == "schema") {
      f.schema = SchemaFromCapsule(v);
    } else if (key == "infer_sample_size") {
      f.infer_sample_size = nb::cast<int64_t>(v);
    } else if (key == "avro_schema") {
      f.avro_schema_json = nb::cast<std::string>(v);
    } else if (key == "confluent_wire_format") {
      f.confluent_wire_format = nb::cast<bool>(v);
    } else if (key == "confluent_schema_id") {
      f.confluent_schema_id = nb::cast<int32_t>(v);
    } else if (key == "csv_delimiter") {
      std::string s = nb::cast<std::string>(v);
      if (s.size() != 1) throw nb::value_error("csv_delimiter must be one character");
      f.csv_delimiter = s[0];
    } else {
      throw nb::value_error(("unknown format option '" + key + "'").c_str());
    }
  }
  return f;
}

std::shared_ptr<kafka::KafkaSourceOptions> SourceOptionsFromDict(const nb::dict& d) {
  auto o = std::make_shared<kafka::KafkaSourceOptions>();
  for (auto [k, v] : d) {
    std::string key = nb::cast<std::string>(k);
    if (v.is_none()) continue;
    if (key == "bootstrap") {
      o->bootstrap = nb::cast<std::string>(v);
    } else if (key == "topics") {
      o->topics = nb::cast<std::vector<std::string>>(v);
    } else if (key == "group") {
      o->group = nb::cast<std::string>(v);
    } else if (key == "start") {
      o->start = Unwrap(kafka::ParseStartPosition(nb::cast<std::string>(v)));
    } else if (key == "start_timestamp_ms") {
      o->start_timestamp_ms = nb::cast<int64_t>(v);
    } else if (key == "reset") {
      o->reset = nb::cast<std::string>(v);
    } else if (key == "assignment") {
      o->assignment = Unwrap(kafka::ParseAssignment(nb::cast<std::string>(v)));
    } else if (key == "format") {
      o->format = FormatFromDict(nb::cast<nb::dict>(v));
    } else if (key == "metadata") {
      o->metadata = nb::cast<std::vector<std::string>>(v);
    } else if (key == "metadata_prefix") {
      o->metadata_prefix = nb::cast<std::string>(v);
    } else if (key == "bad_records") {
      o->bad_records = Unwrap(kafka::ParseBadRecordPolicy(nb::cast<std::string>(v)));
    } else if (key == "dead_letter_topic") {
      o->dead_letter_topic = nb::cast<std::string>(v);
    } else if (key == "batch_size") {
      o->batch_size = nb::cast<int64_t>(v);
    } else if (key == "max_wait_ms") {
      o->max_wait_ms = nb::cast<int64_t>(v);
    } else if (key == "stop_at_end") {
      o->stop_at_end = nb::cast<bool>(v);
    } else if (key == "end_offsets") {
      for (auto [tp, offset] : nb::cast<nb::dict>(v)) {
        auto pair = nb::cast<std::pair<std::string, int32_t>>(tp);
        o->end_offsets[pair] = nb::cast<int64_t>(offset);
      }
    } else if (key == "commit_interval_ms") {
      o->commit_interval_ms = nb::cast<int64_t>(v);
    } else if (key == "pause_after_ms") {
      o->pause_after_ms = nb::cast<int64_t>(v);
    } else if (key == "max_prefetch_bytes") {
      o->max_prefetch_bytes = nb::cast<int64_t>(v);
    } else if (key == "consumer_config") {
      o->consumer_config = ConfigFromDict(nb::cast<nb::dict>(v));
    } else if (key == "dead_letter_config") {
      o->dead_letter_config = ConfigFromDict(nb::cast<nb::dict>(v));
    } else {
      throw nb::value_error(("unknown kafka source option '" + key + "'").c_str());
    }
  }
  Check(o->Validate());
  return o;
}

std::shared_ptr<kafka::KafkaSinkOptions> SinkOptionsFromDict(const nb::dict& d) {
  auto o = std::make_shared<kafka::KafkaSinkOptions>();
  for (auto [k, v] : d) {
    std::string key = nb::cast<std::string>(k);
    if (v.is_none()) continue;
    if (key == "bootstrap") {
      o->bootstrap = nb::cast<std::string>(v);
    } else if (key == "topic") {
      o->topic = nb::cast<std::string>(v);
    } else if (key == "format") {
      o->format = FormatFromDict(nb::cast<nb::dict>(v));
    } else if (key == "key") {
      o->key_column = nb::cast<std::string>(v);
    } else if (key == "headers") {
      o->headers_column = nb::cast<std::string>(v);
    } else if (key == "exclude_key_from_value") {
      o->exclude_key_from_value = nb::cast<bool>(v);
    } else if (key == "exclude_headers_from_value") {
      o->exclude_headers_from_value = nb::cast<bool>(v);
    } else if (key == "producer_config") {
      o->producer_config = ConfigFromDict(nb::cast<nb::dict>(v));
    } else if (key == "max_rows_per_batch") {
      o->max_rows_per_batch = nb::cast<int64_t>(v);
    } else if (key == "flush_timeout_ms") {
      o->flush_timeout_ms = nb::cast<int64_t>(v);
    } else if (key == "delivery") {
      o->delivery = Unwrap(kafka::ParseDelivery(nb::cast<std::string>(v)));
    } else if (key == "uid") {
      o->uid = nb::cast<std::string>(v);
    } else if (key == "transaction_timeout_ms") {
      o->transaction_timeout_ms = nb::cast<int64_t>(v);
    } else if (key == "max_pending_bytes") {
      o->max_pending_bytes = nb::cast<int64_t>(v);
    } else {
      throw nb::value_error(("unknown kafka sink option '" + key + "'").c_str());
    }
  }
  Check(o->Validate());
  return o;
}

nb::dict SourceStatsToDict(const kafka::KafkaSourceStats& s) {
  nb::dict d;
  d["messages"] = s.messages.load();
  d["bytes"] = s.bytes.load();
  d["rows"] = s.rows.load();
  d["batches"] = s.batches.load();
  d["bad_records"] = s.bad_records.load();
  d["skipped"] = s.skipped.load();
  d["dead_lettered"] = s.dead_lettered.load();
  d["rebalances"] = s.rebalances.load();
  d["assigned"] = s.assigned.load();
  d["pauses"] = s.pauses.load();
  d["commits"] = s.commits.load();
  d["commit_failures"] = s.commit_failures.load();
  d["stale_dropped"] = s.stale_dropped.load();
  d["restored_partitions"] = s.restored_partitions.load();
  d["checkpoint_commits"] = s.checkpoint_commits.load();
  return d;
}

nb::dict SinkStatsToDict(const kafka::KafkaSinkStats& s) {
  nb::dict d;
  d["messages"] = s.messages.load();
  d["delivered"] = s.delivered.load();
  d["failed"] = s.failed.load();
  d["bytes"] = s.bytes.load();
  d["transactions_started"] = s.transactions_started.load();
  d["transactions"] = s.transactions.load();
  d["aborted"] = s.aborted.load();
  d["committed_messages"] = s.committed_messages.load();
  d["recommitted_epochs"] = s.recommitted_epochs.load();
  d["skipped_epochs"] = s.skipped_epochs.load();
  d["pending_bytes"] = s.pending_bytes.load();
  return d;
}

// Owns the opened consumer (which is neither copyable nor movable).
struct BatchConsumerHandle {
  std::unique_ptr<kafka::KafkaBatchConsumer> consumer;
  kafka::KafkaBatchConsumer& get() {
    if (!consumer) throw std::runtime_error("kafka batch consumer: not open");
    return *consumer;
  }
};

}  // namespace

void RegisterKafkaBindings(nb::module_& m) {
  nb::class_<kafka::KafkaSourceStats>(m, "KafkaSourceStats")
      .def("snapshot", &SourceStatsToDict);
  nb::class_<kafka::KafkaSinkStats>(m, "KafkaSinkStats")
      .def("snapshot", &SinkStatsToDict);

  m.def(
      "kafka_source",
      [](StreamEnvironment& env, nb::dict options, int parallelism) {
        auto o = SourceOptionsFromDict(options);
        auto stats = o->stats;
        DataStream stream = env.FromSource("kafka_source", o, parallelism);
        return std::make_pair(stream, stats);
      },
      "env"_a, "options"_a, "parallelism"_a);
  m.def(
      "kafka_sink",
      [](const DataStream& stream, nb::dict options) {
        auto o = SinkOptionsFromDict(options);
        auto stats = o->stats;
        stream.Sink("kafka_sink", o);
        if (!o->uid.empty()) {
          // The sink's uid also names its state in checkpoints.
          auto* plan = stream.env()->plan();
          plan->mutable_node(static_cast<int>(plan->nodes().size()) - 1)->uid = o->uid;
        }
        return stats;
      },
      "stream"_a, "options"_a);
  m.def(
      "kafka_create_topic",
      [](std::string bootstrap, std::string topic, int32_t partitions, nb::dict config,
         bool exist_ok, int timeout_ms) {
        auto c = ConfigFromDict(config);
        arrow::Status st;
        {
          nb::gil_scoped_release release;
          st = kafka::CreateTopic(bootstrap, topic, partitions, c, exist_ok, timeout_ms);
        }
        Check(st);
      },
      "bootstrap"_a, "topic"_a, "partitions"_a, "config"_a, "exist_ok"_a, "timeout_ms"_a);
  m.def(
      "kafka_delete_topic",
      [](std::string bootstrap, std::string topic, bool missing_ok, int timeout_ms) {
        arrow::Status st;
        {
          nb::gil_scoped_release release;
          st = kafka::DeleteTopic(bootstrap, topic, missing_ok, timeout_ms);
        }
        Check(st);
      },
      "bootstrap"_a, "topic"_a, "missing_ok"_a, "timeout_ms"_a);
  m.def(
      "kafka_watermarks",
      [](std::string bootstrap, std::string topic, int timeout_ms) {
        arrow::Result<std::vector<std::pair<int64_t, int64_t>>> r;
        {
          nb::gil_scoped_release release;
          r = kafka::WatermarkOffsets(bootstrap, topic, timeout_ms);
        }
        return Unwrap(std::move(r));
      },
      "bootstrap"_a, "topic"_a, "timeout_ms"_a);
  m.def(
      "kafka_partition_for_key",
      [](nb::bytes key, int32_t partitions) {
        if (partitions < 1) throw nb::value_error("partitions must be >= 1");
        return kafka::JavaDefaultPartition(key.c_str(), key.size(), partitions);
      },
      "key"_a, "partitions"_a);

  // A consumer driven by Python (the Faust-compatible App): whole polls come back
  // as Arrow batches, decoded natively; offsets are committed only on request.
  nb::class_<BatchConsumerHandle>(m, "KafkaBatchConsumer")
      .def(
          "__init__",
          [](BatchConsumerHandle* self, std::string bootstrap,
             std::vector<std::string> topics, std::string group, std::string reset,
             nb::object format, nb::dict config) {
            kafka::BatchConsumerOptions o;
            o.bootstrap = std::move(bootstrap);
            o.topics = std::move(topics);
            o.group = std::move(group);
            o.reset = std::move(reset);
            if (!format.is_none()) {
              o.decode = true;
              o.format = FormatFromDict(nb::cast<nb::dict>(format));
            }
            o.config = ConfigFromDict(config);
            arrow::Result<std::unique_ptr<kafka::KafkaBatchConsumer>> r;
            {
              nb::gil_scoped_release release;
              r = kafka::KafkaBatchConsumer::Open(std::move(o),
                                                  arrow::default_memory_pool());
            }
            new (self) BatchConsumerHandle{Unwrap(std::move(r))};
          },
          "bootstrap"_a, "topics"_a, "group"_a, "reset"_a, "format"_a.none(), "config"_a)
      .def(
          "poll",
          [](BatchConsumerHandle& h, int64_t max_messages, int timeout_ms) {
            arrow::Result<kafka::PolledBatch> r;
            {
              nb::gil_scoped_release release;
              r = h.get().Poll(max_messages, timeout_ms);
            }
            kafka::PolledBatch b = Unwrap(std::move(r));
            nb::object rows = nb::none();
            nb::object row_message = nb::none();
            if (b.rows) {
              rows = py::BatchToCapsules(b.rows);
              auto index = arrow::RecordBatch::Make(
                  arrow::schema({arrow::field("message", arrow::int32(), false)}),
                  b.row_message->length(), {b.row_message});
              row_message = py::BatchToCapsules(index);
            }
            nb::list errors;
            for (const auto& e : b.errors)
              errors.append(nb::make_tuple(e.message_index, e.reason));
            nb::list warnings;
            for (const auto& w : b.warnings) warnings.append(nb::str(w.c_str()));
            return nb::make_tuple(py::BatchToCapsules(b.messages), rows, row_message,
                                  errors, warnings);
          },
          "max_messages"_a, "timeout_ms"_a)
      // The Faust layer's poll: a KafkaPolled handle whose columns become Python
      // lists in C++ on demand (faust_columns.h), so no pyarrow is needed.
      .def(
          "poll_batch",
          [](BatchConsumerHandle& h, int64_t max_messages, int timeout_ms) {
            arrow::Result<kafka::PolledBatch> r;
            {
              nb::gil_scoped_release release;
              r = h.get().Poll(max_messages, timeout_ms);
            }
            kafka::PolledBatch b = Unwrap(std::move(r));
            return py::PolledHandle{std::move(b.messages), std::move(b.rows),
                                    std::move(b.row_message), std::move(b.errors),
                                    std::move(b.warnings)};
          },
          "max_messages"_a, "timeout_ms"_a)
      .def(
          "commit",
          [](BatchConsumerHandle& h,
             std::vector<std::tuple<std::string, int32_t, int64_t>> offsets) {
            std::vector<kafka::TopicPartitionOffset> list;
            for (auto& [t, p, o] : offsets) list.push_back({t, p, o});
            arrow::Status st;
            {
              nb::gil_scoped_release release;
              st = h.get().Commit(list);
            }
            Check(st);
          },
          "offsets"_a)
      .def("assignment",
           [](BatchConsumerHandle& h) {
             std::vector<std::tuple<std::string, int32_t, int64_t>> out;
             for (auto& e : Unwrap(h.get().Assignment()))
               out.emplace_back(e.topic, e.partition, e.offset);
             return out;
           })
      .def("close", [](BatchConsumerHandle& h) {
        arrow::Status st;
        {
          nb::gil_scoped_release release;
          st = h.get().Close();
        }
        Check(st);
      });
}

}  // namespace sabot
