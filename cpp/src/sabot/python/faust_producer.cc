// FaustProducer: a librdkafka producer driven by Python (see faust_producer.h).
//
// Python enqueues records with produce() (never blocks: a full queue returns
// False and the caller waits for deliveries), a Python thread calls poll(),
// which waits in librdkafka without the GIL and returns the delivery reports
// collected since the last call as (token, error | None, partition, offset,
// timestamp_ms) tuples; the token is the caller's id of the record.
//
// Threading contract: produce() from any one thread; poll()/flush() from others
// (librdkafka is thread-safe; the report list is guarded by a mutex). close()
// only after the polling thread stopped.
#include "sabot/python/faust_producer.h"

#include <librdkafka/rdkafka.h>
#include <nanobind/stl/string.h>

#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "sabot/connectors/kafka/kafka_client.h"
#include "sabot/python/binding_util.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace sabot::py {
namespace {

struct Delivery {
  uint64_t token;
  std::string error;  // empty: delivered
  int32_t partition;
  int64_t offset;
  int64_t timestamp;
};

class FaustProducer {
 public:
  FaustProducer(const std::string& bootstrap, const nb::dict& config) {
    kafka::ClientConfig c;
    for (auto [k, v] : config)
      c[nb::cast<std::string>(nb::str(k))] = nb::cast<std::string>(nb::str(v));
    auto conf = Unwrap(kafka::MakeConf(bootstrap, c));
    rd_kafka_conf_set_opaque(conf.get(), this);
    rd_kafka_conf_set_dr_msg_cb(conf.get(), &FaustProducer::Delivered);
    producer_ = Unwrap(kafka::MakeClient(RD_KAFKA_PRODUCER, std::move(conf)));
  }

  /// Enqueues one record; False when librdkafka's queue is full.
  bool Produce(const std::string& topic, nb::handle key, nb::handle value,
               int32_t partition, nb::handle headers, int64_t timestamp_ms,
               uint64_t token) {
    rd_kafka_t* rk = Handle();
    char* kp = nullptr;
    Py_ssize_t kn = 0;
    char* vp = nullptr;
    Py_ssize_t vn = 0;
    if (!key.is_none() && PyBytes_AsStringAndSize(key.ptr(), &kp, &kn) < 0)
      throw nb::python_error();
    if (!value.is_none() && PyBytes_AsStringAndSize(value.ptr(), &vp, &vn) < 0)
      throw nb::python_error();
    rd_kafka_headers_t* hdrs = nullptr;
    if (!headers.is_none()) {
      nb::list items = nb::cast<nb::list>(headers);
      hdrs = rd_kafka_headers_new(items.size());
      for (nb::handle item : items) {
        nb::tuple kv = nb::cast<nb::tuple>(item);
        std::string name = nb::cast<std::string>(kv[0]);
        char* hp = nullptr;
        Py_ssize_t hn = 0;
        if (!kv[1].is_none() && PyBytes_AsStringAndSize(kv[1].ptr(), &hp, &hn) < 0) {
          rd_kafka_headers_destroy(hdrs);
          throw nb::python_error();
        }
        rd_kafka_header_add(hdrs, name.data(), static_cast<ssize_t>(name.size()), hp, hn);
      }
    }
    rd_kafka_resp_err_t err = rd_kafka_producev(
        rk, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(kp, static_cast<size_t>(kn)),
        RD_KAFKA_V_VALUE(vp, static_cast<size_t>(vn)),
        RD_KAFKA_V_PARTITION(partition < 0 ? RD_KAFKA_PARTITION_UA : partition),
        RD_KAFKA_V_TIMESTAMP(timestamp_ms > 0 ? timestamp_ms : 0),
        RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(reinterpret_cast<void*>(token)),
        RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return true;
    if (hdrs) rd_kafka_headers_destroy(hdrs);  // not taken over on failure
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) return false;
    throw std::runtime_error("Kafka produce to topic " + topic +
                             " failed: " + rd_kafka_err2str(err));
  }

  /// Serves delivery reports for up to `timeout_ms`; returns those collected.
  nb::list Poll(int timeout_ms) {
    rd_kafka_t* rk = Handle();
    {
      nb::gil_scoped_release release;
      rd_kafka_poll(rk, timeout_ms);
    }
    return TakeDeliveries();
  }

  /// Waits up to `timeout_ms` for every queued record; returns how many remain.
  int Flush(int timeout_ms) {
    rd_kafka_t* rk = Handle();
    nb::gil_scoped_release release;
    rd_kafka_flush(rk, timeout_ms);
    return rd_kafka_outq_len(rk);
  }

  int QueueLength() { return producer_ ? rd_kafka_outq_len(producer_.get()) : 0; }

  void Close() {
    kafka::KafkaHandle h = std::move(producer_);
    if (h) {
      nb::gil_scoped_release release;
      h.reset();
    }
  }

  nb::list TakeDeliveries() {
    std::vector<Delivery> got;
    {
      std::lock_guard<std::mutex> lock(mu_);
      got.swap(deliveries_);
    }
    nb::list out;
    for (auto& d : got) {
      nb::object err =
          d.error.empty() ? nb::none() : nb::object(nb::str(d.error.c_str()));
      out.append(nb::make_tuple(d.token, err, d.partition, d.offset, d.timestamp));
    }
    return out;
  }

 private:
  rd_kafka_t* Handle() {
    if (!producer_) throw std::runtime_error("FaustProducer: closed");
    return producer_.get();
  }

  static void Delivered(rd_kafka_t* /*rk*/, const rd_kafka_message_t* msg, void* opaque) {
    auto* self = static_cast<FaustProducer*>(opaque);
    Delivery d{reinterpret_cast<uint64_t>(msg->_private),
               msg->err ? std::string(rd_kafka_topic_name(msg->rkt)) + ": " +
                              rd_kafka_err2str(msg->err)
                        : std::string(),
               msg->partition, msg->offset, rd_kafka_message_timestamp(msg, nullptr)};
    std::lock_guard<std::mutex> lock(self->mu_);
    self->deliveries_.push_back(std::move(d));
  }

  kafka::KafkaHandle producer_;
  std::mutex mu_;
  std::vector<Delivery> deliveries_;
};

}  // namespace

void RegisterFaustProducer(nb::module_& m) {
  nb::class_<FaustProducer>(m, "FaustProducer")
      .def(nb::init<const std::string&, const nb::dict&>(), "bootstrap"_a, "config"_a)
      .def("produce", &FaustProducer::Produce, "topic"_a, "key"_a.none(),
           "value"_a.none(), "partition"_a, "headers"_a.none(), "timestamp_ms"_a,
           "token"_a,
           "Enqueues a record (bytes or None key/value, partition -1 = partitioner, "
           "headers [(str, bytes)] or None, timestamp_ms 0 = now); False when the "
           "queue is full.")
      .def("poll", &FaustProducer::Poll, "timeout_ms"_a,
           "Serves delivery reports; returns [(token, error | None, partition, offset, "
           "timestamp_ms)].")
      .def("flush", &FaustProducer::Flush, "timeout_ms"_a,
           "Waits for queued records; returns how many remain.")
      .def("take_deliveries", &FaustProducer::TakeDeliveries)
      .def("__len__", &FaustProducer::QueueLength)
      .def("close", &FaustProducer::Close);
}

}  // namespace sabot::py
