// The "nexmark_source" plan node: the built-in Nexmark generator as a source.
#pragma once

#include <arrow/result.h>

#include <memory>
#include <string>
#include <vector>

#include "sabot/connectors/nexmark/generator.h"
#include "sabot/exec/source.h"
#include "sabot/plan/plan.h"
#include "sabot/plan/registry.h"

namespace sabot::nexmark {

/// Options of a "nexmark_source" plan node. A node without options uses the default
/// NexmarkConfig (unbounded combined stream).
struct NexmarkSourceOptions : NodeOptions {
  NexmarkSourceOptions() = default;
  explicit NexmarkSourceOptions(NexmarkConfig c) : config(std::move(c)) {}

  NexmarkConfig config;

  /// "nexmark_source(view=bid, num_events=..., ...)", every config field.
  std::string ToString() const override;
};

/// Reads split `split_index` of `num_splits` of the Nexmark event sequence: one
/// NexmarkGenerator, whose batches it emits as StreamElement::Batch (no
/// watermarks). Splits have disjoint id ranges and share one event-time
/// timeline (NEXMARK.md 2.2).
///
/// Checkpoints: the reader writes operator-state table "splits" (split int32,
/// num_splits int32, events int64: events of the split covered so far). On
/// restore the number of splits stays the one of the checkpoint, whatever the
/// new parallelism, so the event sequence is unchanged; reader i of P takes the
/// splits s with s % P == i and resumes each at its position (a reader may then
/// read several splits, round robin, or none).
///
/// With config.rate_limit > 0 the reader emits at most that many events (of the
/// whole sequence, all kinds) per split per second of wall time, counted from
/// the first Poll, in batches of about 10 ms worth of events. When it is ahead it
/// sleeps at most a few milliseconds and returns PollResult::kNotReady. A
/// per-entity view may then also return kNotReady when a slice held no row of
/// its kind.
///
/// Threading: like every SourceReader, driven by one task at a time.
class NexmarkSourceReader : public SourceReader {
 public:
  NexmarkSourceReader(NexmarkConfig config, int split_index, int num_splits);

  /// Creates the generator(s) with ctx->pool (Poll without Open uses the default
  /// pool); restores split positions from ctx->restore.
  arrow::Status Open(OperatorContext* ctx) override;
  arrow::Result<PollResult> Poll(StreamElement* out) override;
  arrow::Status SnapshotState(SnapshotWriter* writer) override;

  /// The generator of the first split read, or null before the first Open/Poll
  /// or when the reader has no split.
  const NexmarkGenerator* generator() const {
    return splits_.empty() ? nullptr : splits_.front().generator.get();
  }

 private:
  struct Split {
    int index = 0;
    std::unique_ptr<NexmarkGenerator> generator;
    bool clock_started = false;
    int64_t wall_base_ns = 0;
    int64_t clock_base_events = 0;  // events covered when the clock started
  };

  arrow::Status EnsureGenerator(arrow::MemoryPool* pool);
  arrow::Result<PollResult> PollSplit(Split* split, StreamElement* out);
  /// Events the rate limit lets through now, sleeping briefly when there are too
  /// few; 0 means "not ready".
  int64_t RateBudget(Split* split);

  NexmarkConfig config_;
  int split_index_;
  int num_splits_;
  bool opened_ = false;
  std::vector<Split> splits_;
  size_t next_split_ = 0;
};

/// Validates `config` and the split and creates the reader for it.
arrow::Result<std::unique_ptr<SourceReader>> MakeNexmarkSourceReader(NexmarkConfig config,
                                                                     int split_index,
                                                                     int num_splits);

/// Registers source kind "nexmark_source". Registering twice keeps the first one.
void RegisterNexmarkSource(OperatorRegistry* registry);

}  // namespace sabot::nexmark
