// Python bindings of checkpoints, restore and savepoints (python/sabot/checkpoint.py).
#pragma once

#include <nanobind/nanobind.h>

namespace sabot {

/// Registers NativeJob (checkpoint control of a running job),
/// configure_checkpoints, set_uid and verify_checkpoint.
void RegisterCheckpointBindings(nanobind::module_& m);

}  // namespace sabot
