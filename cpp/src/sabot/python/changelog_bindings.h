// Python bindings of the updating operators (group_aggregate, deduplicate,
// top_n), registered into the _sabot module by module.cc.
#pragma once

#include <nanobind/nanobind.h>

namespace sabot {

/// Adds group_aggregate(stream, options, aggregates), deduplicate(stream,
/// options) and top_n(stream, options) to `m`. Call after the Stream class is
/// registered.
void RegisterChangelogBindings(nanobind::module_& m);

}  // namespace sabot
