// Python bindings of keyed state (the keyed_process operator with Python
// functions, the state handles, the job's state backend), registered into the
// _sabot module by module.cc. python/sabot/state.py is the Python API on top.
#pragma once

#include <nanobind/nanobind.h>

namespace sabot {

/// Adds keyed_process(stream, options, factory), set_state_backend(env, ...)
/// and the state context / handle classes to `m`. Call after the Environment
/// and Stream classes are registered.
void RegisterStateBindings(nanobind::module_& m);

}  // namespace sabot
