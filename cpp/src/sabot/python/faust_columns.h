// Arrow columns -> Python lists, built in C++ (no pyarrow): what the Faust
// layer's per-record path needs from a consumer poll (python/sabot/faust/
// transport/kafka.py), so a per-record worker never imports pyarrow or numpy
// (docs/design/faust_memory.md). Also the handle of one poll of the
// BatchConsumer (KafkaPolled): columns converted lazily, one at a time, and the
// Arrow batches handed out as C Data Interface capsules only when asked.
#pragma once

#include <arrow/array.h>
#include <arrow/record_batch.h>
#include <nanobind/nanobind.h>

#include <memory>
#include <string>
#include <vector>

#include "sabot/connectors/kafka/batch_consumer.h"

namespace sabot::py {

/// The values of `array` as a Python list, None for nulls. Supported: null,
/// bool, (u)int8-64, float16/32/64, utf8 and large_utf8 (str), binary and
/// large_binary (bytes), timestamp / date32 / date64 / time / duration (their
/// raw integer values: epoch units, not datetime objects), map<utf8, binary>
/// (a dict per row) and dictionary arrays of these. Other types raise TypeError.
nanobind::list ArrayToPyList(const arrow::Array& array);

/// One poll of kafka::KafkaBatchConsumer, as Python sees it (KafkaPolled).
struct PolledHandle {
  std::shared_ptr<arrow::RecordBatch> messages;
  std::shared_ptr<arrow::RecordBatch> rows;
  std::shared_ptr<arrow::Int32Array> row_message;
  std::vector<DecodeError> errors;
  std::vector<std::string> warnings;
};

/// Registers the KafkaPolled class and arrow_to_pylist (tests) into `m`.
void RegisterFaustColumns(nanobind::module_& m);

}  // namespace sabot::py
