// Python bindings of the event-time joins (interval_join, window_join,
// asof_join, temporal_join),
// registered into the _sabot module by module.cc.
#pragma once

#include <nanobind/nanobind.h>

namespace sabot {

/// Adds interval_join, window_join, asof_join and temporal_join (each
/// (left, right, options)) to `m`. Call after the Stream class is registered.
void RegisterJoinBindings(nanobind::module_& m);

}  // namespace sabot
