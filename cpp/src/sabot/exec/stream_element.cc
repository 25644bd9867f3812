#include "sabot/exec/stream_element.h"

#include <arrow/util/byte_size.h>

namespace sabot {

std::string StreamElement::ToString() const {
  switch (kind) {
    case ElementKind::kBatch:
      return "Batch(" + std::to_string(num_rows()) + " rows)";
    case ElementKind::kWatermark:
      return "Watermark(" + std::to_string(value) + ")";
    case ElementKind::kBarrier:
      return "Barrier(" + std::to_string(value) + ")";
    case ElementKind::kEndOfStream:
      return "EndOfStream";
    case ElementKind::kIdle:
      return value ? "Idle" : "Active";
  }
  return "?";
}

int64_t BatchBytes(const arrow::RecordBatch& batch) {
  // Only the byte ranges a (possibly sliced) batch references, so that a slice
  // of a large table is not charged for the whole table.
  auto referenced = arrow::util::ReferencedBufferSize(batch);
  if (referenced.ok()) return *referenced;
  return static_cast<int64_t>(arrow::util::TotalBufferSize(batch));
}

}  // namespace sabot
