// Python binding of the regular (unbounded) join, registered into the _sabot
// module by module.cc.
#pragma once

#include <nanobind/nanobind.h>

namespace sabot {

/// Adds regular_join(left, right, options) to `m`. Call after the Stream class
/// is registered.
void RegisterRegularJoinBindings(nanobind::module_& m);

}  // namespace sabot
