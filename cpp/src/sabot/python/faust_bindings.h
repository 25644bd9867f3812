// Python bindings of the Faust layer's native Kafka consumer
// (python/sabot/faust/transport/kafka.py), registered into _sabot by module.cc.
#pragma once

#include <nanobind/nanobind.h>

namespace sabot {

/// Adds the FaustConsumer class to `m`.
void RegisterFaustBindings(nanobind::module_& m);

}  // namespace sabot
