// The runtime source interface: one SourceReader per parallel source instance.
#pragma once

#include <arrow/record_batch.h>
#include <arrow/result.h>

#include <memory>
#include <optional>
#include <vector>

#include "sabot/exec/operator.h"
#include "sabot/exec/stream_element.h"

namespace sabot {

/// What a source instance produced in one poll.
enum class PollResult {
  kElement,     ///< `*out` holds a batch or a watermark
  kNotReady,    ///< nothing now (e.g. waiting for a broker); poll again later
  kEndOfInput,  ///< the source is exhausted
};

/// Reads one split (partition, file range, generator slice) of a source.
///
/// Threading contract: like operators, a reader is driven by one task at a time.
/// Poll must not block for long: a source that waits for data returns kNotReady.
class SourceReader {
 public:
  virtual ~SourceReader() = default;
  /// Restores the read position from ctx->restore when it is set.
  virtual arrow::Status Open(OperatorContext* ctx) { return arrow::Status::OK(); }
  /// Writes the read position (per split, as operator state, so a restore at
  /// another parallelism can hand each split to its new reader).
  virtual arrow::Status SnapshotState(SnapshotWriter* writer) {
    return arrow::Status::OK();
  }
  /// Checkpoint `checkpoint_id` is complete (e.g. commit Kafka offsets for
  /// monitoring).
  virtual arrow::Status NotifyCheckpointComplete(int64_t checkpoint_id) {
    return arrow::Status::OK();
  }
  virtual arrow::Result<PollResult> Poll(StreamElement* out) = 0;
  virtual arrow::Status Close() { return arrow::Status::OK(); }

  /// The splits this reader currently reads (e.g. assigned Kafka partitions),
  /// or nullopt when the reader has no such notion. A per-split watermark
  /// assigner chained to the source waits for every active split.
  virtual std::optional<std::vector<int64_t>> ActiveSplits() const {
    return std::nullopt;
  }
};

}  // namespace sabot
