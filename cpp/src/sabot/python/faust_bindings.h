// Python bindings of the Faust layer's value decoder (python/sabot/faust/agents.py),
// registered into _sabot by module.cc.
#pragma once

#include <nanobind/nanobind.h>

namespace sabot {

/// Adds the FaustDecoder class to `m`.
void RegisterFaustBindings(nanobind::module_& m);

}  // namespace sabot
