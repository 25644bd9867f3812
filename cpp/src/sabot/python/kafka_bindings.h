// Python bindings of the Kafka connector (source, sink, topic admin), registered
// into the _sabot module by module.cc.
#pragma once

#include <nanobind/nanobind.h>

namespace sabot {

/// Adds kafka_source, kafka_sink, the admin functions and the stats classes to `m`.
/// Call after the Environment and Stream classes are registered.
void RegisterKafkaBindings(nanobind::module_& m);

}  // namespace sabot
