// Python bindings of the updating operators. Options arrive as dicts built by
// python/sabot/datastream.py (which documents them); bad options raise
// ValueError here, at the binding edge.
#include "sabot/python/changelog_bindings.h"

#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <string>
#include <vector>

#include "sabot/api/datastream.h"

namespace nb = nanobind;

namespace sabot {
namespace {

template <typename T>
T Get(const nb::dict& d, const char* key, T fallback) {
  return d.contains(key) && !d[key].is_none() ? nb::cast<T>(d[key]) : fallback;
}

}  // namespace

void RegisterChangelogBindings(nb::module_& m) {
  m.def(
      "group_aggregate",
      [](const DataStream& s, nb::dict d, nb::list aggregates) {
        GroupAggregateOptions o;
        o.keys = Get<std::vector<std::string>>(d, "keys", {});
        o.state_ttl_ms = Get<int64_t>(d, "state_ttl_ms", 0);
        for (nb::handle h : aggregates) {
          nb::dict a = nb::cast<nb::dict>(h);
          if (a.contains("udaf") && !a["udaf"].is_none()) {
            throw nb::value_error(
                "aggregate(): Python aggregate functions (sb.udaf) are not supported "
                "by non-windowed aggregation yet");
          }
          AggregateSpec spec;
          spec.function = nb::cast<std::string>(a["function"]);
          spec.column = a["column"].is_none() ? "" : nb::cast<std::string>(a["column"]);
          spec.output = nb::cast<std::string>(a["output"]);
          o.aggregates.push_back(std::move(spec));
        }
        if (o.aggregates.empty()) throw nb::value_error("aggregate() needs aggregates");
        if (o.state_ttl_ms < 0) throw nb::value_error("state_ttl must be >= 0");
        return s.GroupAggregate(std::move(o));
      },
      nb::arg("stream"), nb::arg("options"), nb::arg("aggregates"));
  m.def(
      "deduplicate",
      [](const DataStream& s, nb::dict d) {
        DeduplicateOptions o;
        o.keys = Get<std::vector<std::string>>(d, "keys", {});
        std::string keep = Get<std::string>(d, "keep", "first");
        if (keep != "first" && keep != "last") {
          throw nb::value_error(
              ("deduplicate(): keep must be 'first' or 'last', not '" + keep + "'")
                  .c_str());
        }
        o.keep_last = keep == "last";
        o.time_column = Get<std::string>(d, "time", "");
        return s.Deduplicate(std::move(o));
      },
      nb::arg("stream"), nb::arg("options"));
  m.def(
      "top_n",
      [](const DataStream& s, nb::dict d) {
        TopNOptions o;
        o.keys = Get<std::vector<std::string>>(d, "keys", {});
        o.n = Get<int64_t>(d, "n", 0);
        o.by = Get<std::string>(d, "by", "");
        o.descending = Get<bool>(d, "descending", true);
        o.with_rank = Get<bool>(d, "rank", false);
        if (o.n <= 0) throw nb::value_error("top_n(): n must be > 0");
        if (o.by.empty()) throw nb::value_error("top_n(): by= names the order column");
        return s.TopN(std::move(o));
      },
      nb::arg("stream"), nb::arg("options"));
}

}  // namespace sabot
