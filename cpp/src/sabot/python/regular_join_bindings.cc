// Python binding of the regular join. Options arrive as a dict built by
// python/sabot/join.py (which documents them); bad options raise ValueError here,
// at the binding edge.
#include "sabot/python/regular_join_bindings.h"

#include <arrow/buffer.h>
#include <arrow/compute/expression.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <string>
#include <vector>

#include "sabot/api/datastream.h"

namespace nb = nanobind;

namespace sabot {

namespace {

// An Arrow expression serialized by pyarrow (Expression.__reduce__).
arrow::compute::Expression ConditionFromBytes(const nb::bytes& bytes) {
  auto copy = arrow::Buffer::CopyNonOwned(
      arrow::Buffer(reinterpret_cast<const uint8_t*>(bytes.c_str()),
                    static_cast<int64_t>(bytes.size())),
      arrow::default_cpu_memory_manager());
  if (!copy.ok()) throw nb::value_error(copy.status().message().c_str());
  auto expr =
      arrow::compute::Deserialize(std::shared_ptr<arrow::Buffer>(*std::move(copy)));
  if (!expr.ok()) {
    throw nb::value_error(
        ("regular join: cannot read the join condition: " + expr.status().message())
            .c_str());
  }
  return *std::move(expr);
}

}  // namespace

void RegisterRegularJoinBindings(nb::module_& m) {
  m.def(
      "regular_join",
      [](const DataStream& left, const DataStream& right, nb::dict d) {
        RegularJoinOptions o;
        o.left_keys = nb::cast<std::vector<std::string>>(d["left_keys"]);
        o.right_keys = nb::cast<std::vector<std::string>>(d["right_keys"]);
        auto type = JoinTypeFromString(nb::cast<std::string>(d["how"]));
        if (!type.ok()) throw nb::value_error(type.status().message().c_str());
        o.type = *type;
        o.left_ttl_ms = nb::cast<int64_t>(d["left_ttl_ms"]);
        o.right_ttl_ms = nb::cast<int64_t>(d["right_ttl_ms"]);
        if (o.left_ttl_ms < 0 || o.right_ttl_ms < 0) {
          throw nb::value_error("regular join: a state TTL must not be negative");
        }
        if (d.contains("condition") && !d["condition"].is_none()) {
          o.condition = ConditionFromBytes(nb::cast<nb::bytes>(d["condition"]));
        }
        o.left_unique = d.contains("left_unique") && nb::cast<bool>(d["left_unique"]);
        o.right_unique = d.contains("right_unique") && nb::cast<bool>(d["right_unique"]);
        return left.Join(right, std::move(o));
      },
      nb::arg("left"), nb::arg("right"), nb::arg("options"));
}

}  // namespace sabot
