// In-band stream elements: data batches and the control messages that travel
// with them on the same channel, in order.
#pragma once

#include <arrow/record_batch.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <string>

namespace sabot {

/// A watermark value meaning "no event time seen yet".
inline constexpr int64_t kMinWatermark = std::numeric_limits<int64_t>::min();
/// The watermark emitted at end of input: fires every pending event-time timer.
inline constexpr int64_t kMaxWatermark = std::numeric_limits<int64_t>::max();

enum class ElementKind : uint8_t {
  kBatch,        ///< a RecordBatch of data
  kWatermark,    ///< event time has advanced to `value` on this channel
  kBarrier,      ///< checkpoint barrier, checkpoint id in `value`
  kEndOfStream,  ///< no more elements on this channel
  kIdle,         ///< the channel is idle (value 1) or active again (value 0)
};

/// One element on a channel. Control elements are ordered with data: an
/// operator sees every batch sent before a watermark/barrier before the
/// watermark/barrier itself.
struct StreamElement {
  ElementKind kind = ElementKind::kBatch;
  int64_t value = 0;
  std::shared_ptr<arrow::RecordBatch> batch;

  static StreamElement Batch(std::shared_ptr<arrow::RecordBatch> b) {
    return {ElementKind::kBatch, 0, std::move(b)};
  }
  static StreamElement Watermark(int64_t wm) {
    return {ElementKind::kWatermark, wm, nullptr};
  }
  static StreamElement Barrier(int64_t checkpoint_id) {
    return {ElementKind::kBarrier, checkpoint_id, nullptr};
  }
  static StreamElement EndOfStream() { return {ElementKind::kEndOfStream, 0, nullptr}; }
  static StreamElement Idle(bool idle) {
    return {ElementKind::kIdle, idle ? 1 : 0, nullptr};
  }

  bool is_batch() const { return kind == ElementKind::kBatch; }
  int64_t num_rows() const { return batch ? batch->num_rows() : 0; }
  std::string ToString() const;
};

/// Approximate in-memory size of a batch (sum of its buffers), used by channel bounds.
int64_t BatchBytes(const arrow::RecordBatch& batch);

}  // namespace sabot
