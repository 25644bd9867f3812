// Python bindings of the upsert sinks (python/sabot/upsert.py).
#include <nanobind/stl/map.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "sabot/api/datastream.h"
#include "sabot/python/binding_util.h"
#include "sabot/python/lookup_bindings.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace sabot {
namespace {

using py::Check;

template <typename T>
T Get(const nb::dict& d, const char* key, T fallback) {
  return d.contains(key) && !d[key].is_none() ? nb::cast<T>(d[key]) : fallback;
}

nb::dict KafkaStatsToDict(const KafkaUpsertSinkStats& s) {
  nb::dict d;
  d["upserts"] = s.upserts.load();
  d["tombstones"] = s.tombstones.load();
  d["dropped_update_before"] = s.dropped_update_before.load();
  d["delivered"] = s.delivered.load();
  d["failed"] = s.failed.load();
  return d;
}

struct FilesWritten {
  std::shared_ptr<std::atomic<int64_t>> count;
};

}  // namespace

void RegisterUpsertBindings(nb::module_& m) {
  nb::class_<KafkaUpsertSinkStats>(m, "KafkaUpsertSinkStats")
      .def("snapshot", &KafkaStatsToDict);
  nb::class_<FilesWritten>(m, "UpsertFilesWritten")
      .def_prop_ro("count", [](const FilesWritten& f) { return f.count->load(); });

  m.def(
      "kafka_upsert_sink",
      [](const DataStream& stream, nb::dict d) {
        KafkaUpsertSinkOptions o;
        o.bootstrap = Get<std::string>(d, "bootstrap", "");
        o.topic = Get<std::string>(d, "topic", "");
        o.key_columns = Get<std::vector<std::string>>(d, "keys", {});
        o.key_format = Get<std::string>(d, "key_format", "json");
        o.flush_timeout_ms = Get<int64_t>(d, "flush_timeout_ms", o.flush_timeout_ms);
        if (d.contains("producer_config") && !d["producer_config"].is_none()) {
          for (auto [k, v] : nb::cast<nb::dict>(d["producer_config"])) {
            o.producer_config[nb::cast<std::string>(nb::str(k))] =
                nb::cast<std::string>(nb::str(v));
          }
        }
        Check(o.Validate());
        return stream.WriteKafkaUpsert(std::move(o));
      },
      "stream"_a, "options"_a);
  m.def(
      "file_upsert_sink",
      [](const DataStream& stream, nb::dict d) {
        FileUpsertSinkOptions o;
        o.path = Get<std::string>(d, "path", "");
        o.format = Get<std::string>(d, "format", "parquet");
        o.key_columns = Get<std::vector<std::string>>(d, "keys", {});
        Check(o.Validate());
        return FilesWritten{stream.WriteUpsertFiles(std::move(o))};
      },
      "stream"_a, "options"_a);
}

}  // namespace sabot
