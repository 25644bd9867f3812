// Python binding of the regular join. Options arrive as a dict built by
// python/sabot/join.py (which documents them); bad options raise ValueError here,
// at the binding edge.
#include "sabot/python/regular_join_bindings.h"

#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <string>
#include <vector>

#include "sabot/api/datastream.h"

namespace nb = nanobind;

namespace sabot {

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
        return left.Join(right, std::move(o));
      },
      nb::arg("left"), nb::arg("right"), nb::arg("options"));
}

}  // namespace sabot
