// The Faust layer's Kafka producer (python/sabot/faust/transport/kafka.py):
// librdkafka through the engine's client helpers, so a worker needs neither
// confluent-kafka nor its second copy of librdkafka (14 MiB of RSS measured;
// docs/design/faust_memory.md).
#pragma once

#include <nanobind/nanobind.h>

namespace sabot::py {

/// Registers the FaustProducer class into `m`.
void RegisterFaustProducer(nanobind::module_& m);

}  // namespace sabot::py
