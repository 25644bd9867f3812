// The Faust layer's Kafka consumer: a consumer-group member that polls whole
// batches into Arrow columns (topic, partition, offset, timestamp, key, value,
// headers) and, optionally, decodes the values natively (formats/format.h) into
// a second record batch, all with the GIL released. Offsets are committed only
// explicitly (enable.auto.commit=false): the Python agent runtime commits the
// positions whose records are processed (docs/design/faust.md).
//
/// Threading contract: one Python thread drives a consumer at a time (the
/// transport's per-consumer executor); poll/commit/close release the GIL.
#include "sabot/python/faust_bindings.h"

#include <arrow/api.h>
#include <arrow/c/abi.h>
#include <arrow/c/bridge.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <chrono>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "sabot/connectors/kafka/kafka_client.h"
#include "sabot/formats/format.h"
#include "sabot/python/binding_util.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace sabot {
namespace {

using py::Check;
using py::Unwrap;

std::shared_ptr<arrow::Schema> ImportSchemaCapsule(nb::handle capsule) {
  auto* c_schema =
      static_cast<ArrowSchema*>(PyCapsule_GetPointer(capsule.ptr(), "arrow_schema"));
  if (!c_schema) {
    PyErr_Clear();
    throw nb::type_error("expected an arrow_schema capsule");
  }
  return Unwrap(arrow::ImportSchema(c_schema));
}

struct MessageDeleter {
  void operator()(rd_kafka_message_t* m) const { rd_kafka_message_destroy(m); }
};
using MessagePtr = std::unique_ptr<rd_kafka_message_t, MessageDeleter>;

struct QueueDeleter {
  void operator()(rd_kafka_queue_t* q) const { rd_kafka_queue_destroy(q); }
};

struct PollResult {
  std::shared_ptr<arrow::RecordBatch> raw;
  std::shared_ptr<arrow::RecordBatch> decoded;
  std::vector<std::tuple<std::string, int32_t, int64_t>> positions;
  std::vector<std::tuple<int64_t, std::string>> errors;  // decode errors, by row
  std::vector<std::string> warnings;                     // consumer errors
};

class FaustConsumer {
 public:
  FaustConsumer(const std::string& bootstrap, const std::string& group,
                std::vector<std::string> topics, const nb::dict& config,
                nb::object format)
      : topics_(std::move(topics)) {
    kafka::ClientConfig cfg = {
        {"group.id", group},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"auto.offset.reset", "earliest"},
        {"session.timeout.ms", "10000"},
        {"heartbeat.interval.ms", "1000"},
        {"fetch.wait.max.ms", "50"},
        {"queued.max.messages.kbytes", "65536"},
    };
    for (auto [k, v] : config) {
      cfg[nb::cast<std::string>(nb::str(k))] = nb::cast<std::string>(nb::str(v));
    }
    if (!format.is_none()) {
      nb::dict f = nb::cast<nb::dict>(format);
      FormatOptions options;
      options.name = nb::cast<std::string>(f["name"]);
      if (f.contains("schema") && !f["schema"].is_none()) {
        options.schema = ImportSchemaCapsule(f["schema"]);
      }
      decoder_ = Unwrap(MakeDecoder(options, arrow::default_memory_pool()));
    }
    auto conf = Unwrap(kafka::MakeConf(bootstrap, cfg));
    consumer_ = Unwrap(kafka::MakeClient(RD_KAFKA_CONSUMER, std::move(conf)));
    rd_kafka_poll_set_consumer(consumer_.get());
    queue_.reset(rd_kafka_queue_get_consumer(consumer_.get()));
    kafka::PartitionList list(
        rd_kafka_topic_partition_list_new(static_cast<int>(topics_.size())));
    for (const auto& t : topics_) {
      rd_kafka_topic_partition_list_add(list.get(), t.c_str(), RD_KAFKA_PARTITION_UA);
    }
    Check(kafka::KafkaStatus(rd_kafka_subscribe(consumer_.get(), list.get()),
                             "faust consumer: subscribe to " + Join(topics_)));
  }

  ~FaustConsumer() { (void)Close(); }

  /// Up to `max_records` messages: waits up to `timeout_ms` for the first.
  arrow::Result<PollResult> Poll(int64_t max_records, int64_t timeout_ms) {
    PollResult out;
    if (closed_) return out;
    std::vector<rd_kafka_message_t*> raw(
        static_cast<size_t>(std::max<int64_t>(1, max_records)));
    auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    std::vector<MessagePtr> msgs;
    while (true) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      deadline - std::chrono::steady_clock::now())
                      .count();
      int wait = msgs.empty() ? static_cast<int>(std::max<int64_t>(0, left)) : 0;
      ssize_t n = rd_kafka_consume_batch_queue(queue_.get(), wait, raw.data(),
                                               raw.size() - msgs.size());
      if (n < 0) {
        return kafka::KafkaStatus(rd_kafka_last_error(), "faust consumer: poll");
      }
      for (ssize_t i = 0; i < n; ++i) msgs.emplace_back(raw[static_cast<size_t>(i)]);
      if (n == 0 || static_cast<int64_t>(msgs.size()) >= max_records || left <= 0) break;
    }
    arrow::StringDictionaryBuilder topic_b;
    arrow::Int32Builder part_b;
    arrow::Int64Builder off_b, ts_b;
    arrow::BinaryBuilder key_b, val_b;
    auto hdr_struct = arrow::struct_(
        {arrow::field("key", arrow::utf8()), arrow::field("value", arrow::binary())});
    auto hkey_b = std::make_shared<arrow::StringBuilder>();
    auto hval_b = std::make_shared<arrow::BinaryBuilder>();
    auto hstruct_b = std::make_shared<arrow::StructBuilder>(
        hdr_struct, arrow::default_memory_pool(),
        std::vector<std::shared_ptr<arrow::ArrayBuilder>>{hkey_b, hval_b});
    arrow::ListBuilder hdr_b(arrow::default_memory_pool(), hstruct_b);
    bool any_headers = false;
    std::map<std::pair<std::string, int32_t>, int64_t> positions;
    for (auto& m : msgs) {
      if (m->err) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
          out.warnings.push_back(rd_kafka_message_errstr(m.get()));
        }
        continue;
      }
      const char* topic = rd_kafka_topic_name(m->rkt);
      ARROW_RETURN_NOT_OK(topic_b.Append(topic));
      ARROW_RETURN_NOT_OK(part_b.Append(m->partition));
      ARROW_RETURN_NOT_OK(off_b.Append(m->offset));
      rd_kafka_timestamp_type_t tstype;
      ARROW_RETURN_NOT_OK(ts_b.Append(rd_kafka_message_timestamp(m.get(), &tstype)));
      if (m->key) {
        ARROW_RETURN_NOT_OK(key_b.Append(static_cast<const uint8_t*>(m->key),
                                         static_cast<int32_t>(m->key_len)));
      } else {
        ARROW_RETURN_NOT_OK(key_b.AppendNull());
      }
      if (m->payload) {
        ARROW_RETURN_NOT_OK(val_b.Append(static_cast<const uint8_t*>(m->payload),
                                         static_cast<int32_t>(m->len)));
      } else {
        ARROW_RETURN_NOT_OK(val_b.AppendNull());
      }
      rd_kafka_headers_t* hdrs = nullptr;
      if (rd_kafka_message_headers(m.get(), &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR &&
          hdrs != nullptr && rd_kafka_header_cnt(hdrs) > 0) {
        any_headers = true;
        ARROW_RETURN_NOT_OK(hdr_b.Append());
        const char* name;
        const void* value;
        size_t size;
        for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &value, &size) ==
                           RD_KAFKA_RESP_ERR_NO_ERROR;
             ++i) {
          ARROW_RETURN_NOT_OK(hstruct_b->Append());
          ARROW_RETURN_NOT_OK(hkey_b->Append(name));
          if (value) {
            ARROW_RETURN_NOT_OK(hval_b->Append(static_cast<const uint8_t*>(value),
                                               static_cast<int32_t>(size)));
          } else {
            ARROW_RETURN_NOT_OK(hval_b->AppendNull());
          }
        }
      } else {
        ARROW_RETURN_NOT_OK(hdr_b.AppendNull());
      }
      positions[{topic, m->partition}] = m->offset + 1;
    }
    msgs.clear();  // hand the buffers back to librdkafka before decoding
    int64_t rows = part_b.length();
    if (rows == 0) return out;
    std::shared_ptr<arrow::Array> topic_a, part_a, off_a, ts_a, key_a, val_a, hdr_a;
    ARROW_RETURN_NOT_OK(topic_b.Finish(&topic_a));
    ARROW_RETURN_NOT_OK(part_b.Finish(&part_a));
    ARROW_RETURN_NOT_OK(off_b.Finish(&off_a));
    ARROW_RETURN_NOT_OK(ts_b.Finish(&ts_a));
    ARROW_RETURN_NOT_OK(key_b.Finish(&key_a));
    ARROW_RETURN_NOT_OK(val_b.Finish(&val_a));
    ARROW_RETURN_NOT_OK(hdr_b.Finish(&hdr_a));
    std::vector<std::shared_ptr<arrow::Field>> fields = {
        arrow::field("topic", topic_a->type()), arrow::field("partition", arrow::int32()),
        arrow::field("offset", arrow::int64()), arrow::field("timestamp", arrow::int64()),
        arrow::field("key", arrow::binary()),   arrow::field("value", arrow::binary())};
    std::vector<std::shared_ptr<arrow::Array>> cols = {topic_a, part_a, off_a,
                                                       ts_a,    key_a,  val_a};
    if (any_headers) {
      fields.push_back(arrow::field("headers", hdr_a->type()));
      cols.push_back(hdr_a);
    }
    out.raw = arrow::RecordBatch::Make(arrow::schema(fields), rows, cols);
    for (auto& [tp, off] : positions)
      out.positions.emplace_back(tp.first, tp.second, off);
    if (decoder_) {
      const auto& values = static_cast<const arrow::BinaryArray&>(*val_a);
      ARROW_ASSIGN_OR_RAISE(DecodedBatch decoded, decoder_->Decode(values));
      if (decoded.errors.empty() && decoded.rows && decoded.rows->num_rows() == rows) {
        out.decoded = decoded.rows;
      } else {
        // Rows must line up with messages for the agent; the Python side falls
        // back to decoding per record and reports the bad ones.
        for (const auto& e : decoded.errors)
          out.errors.emplace_back(e.message_index, e.reason);
      }
    }
    return out;
  }

  arrow::Status Commit(
      const std::vector<std::tuple<std::string, int32_t, int64_t>>& offsets) {
    if (closed_ || offsets.empty()) return arrow::Status::OK();
    kafka::PartitionList list(
        rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size())));
    for (const auto& [t, p, o] : offsets) {
      rd_kafka_topic_partition_list_add(list.get(), t.c_str(), p)->offset = o;
    }
    return kafka::KafkaStatus(rd_kafka_commit(consumer_.get(), list.get(), /*async=*/0),
                              "faust consumer: offset commit");
  }

  std::vector<std::tuple<std::string, int32_t>> Assignment() {
    std::vector<std::tuple<std::string, int32_t>> out;
    rd_kafka_topic_partition_list_t* raw = nullptr;
    if (rd_kafka_assignment(consumer_.get(), &raw) != RD_KAFKA_RESP_ERR_NO_ERROR)
      return out;
    kafka::PartitionList list(raw);
    for (int i = 0; i < list->cnt; ++i) {
      out.emplace_back(list->elems[i].topic, list->elems[i].partition);
    }
    return out;
  }

  arrow::Status Close() {
    if (closed_) return arrow::Status::OK();
    closed_ = true;
    queue_.reset();
    rd_kafka_resp_err_t err = rd_kafka_consumer_close(consumer_.get());
    consumer_.reset();
    return kafka::KafkaStatus(err, "faust consumer: close");
  }

 private:
  static std::string Join(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
    return s;
  }

  std::vector<std::string> topics_;
  kafka::KafkaHandle consumer_;
  std::unique_ptr<rd_kafka_queue_t, QueueDeleter> queue_;
  std::unique_ptr<Decoder> decoder_;
  bool closed_ = false;
};

/// Decodes a binary column of message values into rows (formats/format.h), for
/// `stream.batches()` on topics whose values the consumer did not decode.
class FaustDecoder {
 public:
  explicit FaustDecoder(const nb::dict& f) {
    FormatOptions options;
    options.name = nb::cast<std::string>(f["name"]);
    if (f.contains("schema") && !f["schema"].is_none()) {
      options.schema = ImportSchemaCapsule(f["schema"]);
    }
    decoder_ = Unwrap(MakeDecoder(options, arrow::default_memory_pool()));
  }

  /// (rows, errors): rows line up with the input only when errors is empty.
  nb::object Decode(nb::handle array_capsules) {
    nb::tuple caps = nb::cast<nb::tuple>(array_capsules);
    auto* c_schema =
        static_cast<ArrowSchema*>(PyCapsule_GetPointer(caps[0].ptr(), "arrow_schema"));
    auto* c_array =
        static_cast<ArrowArray*>(PyCapsule_GetPointer(caps[1].ptr(), "arrow_array"));
    if (!c_schema || !c_array) {
      PyErr_Clear();
      throw nb::type_error("expected (arrow_schema, arrow_array) capsules");
    }
    auto array = Unwrap(arrow::ImportArray(c_array, c_schema));
    if (array->type_id() != arrow::Type::BINARY) {
      throw nb::type_error("FaustDecoder.decode expects a binary array");
    }
    arrow::Result<DecodedBatch> r;
    {
      nb::gil_scoped_release release;
      r = decoder_->Decode(static_cast<const arrow::BinaryArray&>(*array));
    }
    DecodedBatch decoded = Unwrap(std::move(r));
    std::vector<std::tuple<int64_t, std::string>> errors;
    for (const auto& e : decoded.errors) errors.emplace_back(e.message_index, e.reason);
    nb::object rows = nb::none();
    if (decoded.rows) rows = py::BatchToCapsules(decoded.rows);
    return nb::make_tuple(rows, nb::cast(errors));
  }

 private:
  std::unique_ptr<Decoder> decoder_;
};

}  // namespace

void RegisterFaustBindings(nb::module_& m) {
  nb::class_<FaustDecoder>(m, "FaustDecoder")
      .def(nb::init<const nb::dict&>(), "format"_a)
      .def("decode", &FaustDecoder::Decode, "values"_a,
           "(rows capsules | None, errors [(index, reason)])");
  nb::class_<FaustConsumer>(m, "FaustConsumer")
      .def(nb::init<const std::string&, const std::string&, std::vector<std::string>,
                    const nb::dict&, nb::object>(),
           "bootstrap"_a, "group"_a, "topics"_a, "config"_a, "format"_a.none())
      .def(
          "poll",
          [](FaustConsumer& c, int64_t max_records, int64_t timeout_ms) -> nb::object {
            arrow::Result<PollResult> r;
            {
              nb::gil_scoped_release release;
              r = c.Poll(max_records, timeout_ms);
            }
            PollResult res = Unwrap(std::move(r));
            if (!res.raw) {
              return nb::make_tuple(nb::none(), nb::none(), nb::list(), nb::list(),
                                    nb::cast(res.warnings));
            }
            nb::object decoded = nb::none();
            if (res.decoded) decoded = py::BatchToCapsules(res.decoded);
            return nb::make_tuple(py::BatchToCapsules(res.raw), decoded,
                                  nb::cast(res.positions), nb::cast(res.errors),
                                  nb::cast(res.warnings));
          },
          "max_records"_a, "timeout_ms"_a,
          "(raw batch capsules | None, decoded batch capsules | None, positions "
          "[(topic, partition, next offset)], decode errors [(row, reason)], warnings)")
      .def(
          "commit",
          [](FaustConsumer& c,
             std::vector<std::tuple<std::string, int32_t, int64_t>> offsets) {
            arrow::Status st;
            {
              nb::gil_scoped_release release;
              st = c.Commit(offsets);
            }
            Check(st);
          },
          "offsets"_a)
      .def("assignment", &FaustConsumer::Assignment)
      .def("close", [](FaustConsumer& c) {
        arrow::Status st;
        {
          nb::gil_scoped_release release;
          st = c.Close();
        }
        Check(st);
      });
}

}  // namespace sabot
