// Options arrive as dicts built by python/sabot/datastream.py (which documents
// them); bad options raise ValueError here, at the binding edge.
#include "sabot/python/over_files_bindings.h"

#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <memory>
#include <string>
#include <vector>

#include "sabot/api/datastream.h"
#include "sabot/connectors/file/partitioned_file_sink.h"
#include "sabot/operators/over_aggregate.h"

namespace nb = nanobind;

namespace sabot {
namespace {

template <typename T>
T Get(const nb::dict& d, const char* key, T fallback) {
  return d.contains(key) && !d[key].is_none() ? nb::cast<T>(d[key]) : fallback;
}

}  // namespace

void RegisterOverFilesBindings(nb::module_& m) {
  m.def(
      "over_rows",
      [](const DataStream& s, nb::dict d, nb::list aggregates) {
        auto o = std::make_shared<OverRowsOptions>();
        o->keys = Get<std::vector<std::string>>(d, "keys", {});
        o->order_by = Get<std::string>(d, "order_by", "");
        o->row_key = Get<std::string>(d, "row_key", "");
        o->preceding = Get<int64_t>(d, "preceding", -1);
        for (nb::handle h : aggregates) {
          nb::dict a = nb::cast<nb::dict>(h);
          if (a.contains("udaf") && !a["udaf"].is_none())
            throw nb::value_error(
                "over_rows(): Python aggregate functions are not supported");
          AggregateSpec spec;
          spec.function = nb::cast<std::string>(a["function"]);
          spec.column = a["column"].is_none() ? "" : nb::cast<std::string>(a["column"]);
          spec.output = nb::cast<std::string>(a["output"]);
          o->aggregates.push_back(std::move(spec));
        }
        if (o->preceding < 0)
          throw nb::value_error("over_rows(): preceding must be >= 0");
        if (o->order_by.empty())
          throw nb::value_error("over_rows(): order_by is required");
        if (o->row_key.empty()) throw nb::value_error("over_rows(): row_key is required");
        if (o->aggregates.empty()) throw nb::value_error("over_rows(): no aggregates");
        return s.Apply("over_rows", std::move(o));
      },
      nb::arg("stream"), nb::arg("options"), nb::arg("aggregates"));
  m.def(
      "partitioned_file_sink",
      [](const DataStream& s, nb::dict d) {
        auto o = std::make_shared<PartitionedFileSinkOptions>();
        o->path = Get<std::string>(d, "path", "");
        o->format = Get<std::string>(d, "format", "csv");
        o->partition_by = Get<std::vector<std::string>>(d, "partition_by", {});
        o->success_file = Get<bool>(d, "success_file", true);
        if (o->path.empty()) throw nb::value_error("write_partitioned_files(): no path");
        if (o->format != "csv" && o->format != "parquet") {
          throw nb::value_error(("write_partitioned_files(): format must be 'csv' or "
                                 "'parquet', not '" +
                                 o->format + "'")
                                    .c_str());
        }
        if (o->partition_by.empty())
          throw nb::value_error(
              "write_partitioned_files(): partition_by names no column");
        return s.Apply("partitioned_file_sink", std::move(o));
      },
      nb::arg("stream"), nb::arg("options"));
}

}  // namespace sabot
