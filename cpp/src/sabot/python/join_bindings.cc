// Python bindings of the event-time joins (interval, window, asof, temporal). Options
// arrive as a dict built by python/sabot/join.py (which documents them); bad options
// raise ValueError here, at the binding edge.
#include "sabot/python/join_bindings.h"

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

// The fields both join kinds share.
template <typename Options>
void ReadCommon(const nb::dict& d, Options* o) {
  o->left_keys = nb::cast<std::vector<std::string>>(d["left_keys"]);
  o->right_keys = nb::cast<std::vector<std::string>>(d["right_keys"]);
  o->left_time = Get<std::string>(d, "left_time", "");
  o->right_time = Get<std::string>(d, "right_time", "");
  o->int_unit = Get<std::string>(d, "time_unit", "ms");
  auto type = JoinTypeFromString(Get<std::string>(d, "how", "inner"));
  if (!type.ok()) throw nb::value_error(type.status().message().c_str());
  o->type = *type;
}

}  // namespace

void RegisterJoinBindings(nb::module_& m) {
  m.def(
      "interval_join",
      [](const DataStream& left, const DataStream& right, nb::dict d) {
        IntervalJoinOptions o;
        ReadCommon(d, &o);
        o.lower_ms = Get<int64_t>(d, "lower_ms", 0);
        o.upper_ms = Get<int64_t>(d, "upper_ms", 0);
        return left.IntervalJoin(right, std::move(o));
      },
      nb::arg("left"), nb::arg("right"), nb::arg("options"));
  m.def(
      "window_join",
      [](const DataStream& left, const DataStream& right, nb::dict d) {
        WindowJoinOptions o;
        ReadCommon(d, &o);
        std::string kind = Get<std::string>(d, "kind", "");
        if (kind == "tumbling") {
          o.window.kind = WindowSpec::Kind::kTumbling;
        } else if (kind == "hopping") {
          o.window.kind = WindowSpec::Kind::kHopping;
        } else {
          throw nb::value_error(
              ("window_join supports tumbling and hopping windows, not '" + kind + "'")
                  .c_str());
        }
        o.window.size_ms = Get<int64_t>(d, "size_ms", 0);
        o.window.slide_ms = Get<int64_t>(d, "slide_ms", 0);
        o.window.offset_ms = Get<int64_t>(d, "offset_ms", 0);
        return left.WindowJoin(right, std::move(o));
      },
      nb::arg("left"), nb::arg("right"), nb::arg("options"));
  m.def(
      "asof_join",
      [](const DataStream& left, const DataStream& right, nb::dict d) {
        AsofJoinOptions o;
        ReadCommon(d, &o);
        o.tolerance_ms = Get<int64_t>(d, "tolerance_ms", 0);
        return left.AsofJoin(right, std::move(o));
      },
      nb::arg("left"), nb::arg("right"), nb::arg("options"));
  m.def(
      "temporal_join",
      [](const DataStream& left, const DataStream& versions, nb::dict d) {
        TemporalJoinOptions o;
        ReadCommon(d, &o);
        o.deleted_column = Get<std::string>(d, "deleted", "");
        return left.TemporalJoin(versions, std::move(o));
      },
      nb::arg("left"), nb::arg("versions"), nb::arg("options"));
}

}  // namespace sabot
