// The built-in Nexmark event generator (see /work/shared/NEXMARK.md, sections 1-2).
#pragma once

#include <arrow/memory_pool.h>
#include <arrow/record_batch.h>
#include <arrow/result.h>
#include <arrow/status.h>
#include <arrow/type_fwd.h>

#include <cstdint>
#include <memory>
#include <string>

namespace sabot::nexmark {

/// Event type codes of the combined stream's `event_type` column.
inline constexpr int32_t kPersonEvent = 0;
inline constexpr int32_t kAuctionEvent = 1;
inline constexpr int32_t kBidEvent = 2;

/// Generator settings. Defaults follow the Flink Nexmark suite except where a
/// comment says otherwise. Check a config with ValidateConfig before use.
struct NexmarkConfig {
  /// Events over all splits; 0 = unbounded (Long.MAX_VALUE div (T * max avg size),
  /// as in the Flink source).
  int64_t num_events = 0;
  /// Events per second of event time. The event with adjusted number `adj` has
  /// dateTime = base_time_ms + trunc(adj * delay_us) div 1000, with
  /// delay_us = 1e6 / first_event_rate * num_generators.
  int64_t first_event_rate = 10000;
  /// Flink's numEventGenerators. 0 means "the number of splits" (what Flink does
  /// by substituting parallelism.default), so that the combined event rate of all
  /// splits is first_event_rate. With a positive value every split runs at
  /// first_event_rate / num_generators.
  int64_t num_generators = 0;
  /// Event time of event number 0: fixed (2026-01-01T00:00:00Z) so that runs are
  /// reproducible, where Flink takes the wall clock.
  int64_t base_time_ms = 1767225600000;
  /// Seeds the per-event PRNG (from seed and event id) and the shared tables (the
  /// 1 MiB extra string, HOT_URLS and the 10000 cached channel URLs).
  uint64_t seed = 42;
  int person_proportion = 1, auction_proportion = 3, bid_proportion = 46;
  int hot_auction_ratio = 2, hot_sellers_ratio = 4, hot_bidders_ratio = 4;
  int64_t num_in_flight_auctions = 100, num_active_people = 1000;
  int64_t avg_person_byte_size = 200, avg_auction_byte_size = 500,
          avg_bid_byte_size = 100;
  /// Permutes event numbers within blocks of this size (1 = in order).
  int64_t out_of_order_group_size = 1;
  /// With probability prob_delayed_event an event's dateTime is moved back by
  /// U[0, occasional_delay_ms] (inclusive). Flink defines but never applies this;
  /// here it is off by default. The draw uses its own per-event stream, so turning
  /// it on does not change any other field.
  int64_t occasional_delay_ms = 0;
  double prob_delayed_event = 0.0;
  /// Events (of the whole sequence, all kinds) per second of wall time per split;
  /// 0 = as fast as possible. Used by the source reader, not by the generator.
  int64_t rate_limit = 0;
  /// Rows per emitted RecordBatch (the last batch of a split may be shorter).
  int64_t batch_size = 8192;
  /// "combined" (CombinedSchema) or one of "bid", "auction", "person" (the
  /// flattened per-entity views).
  std::string view = "combined";
};

/// Checks every field of `config`; the error message names the offending field.
arrow::Status ValidateConfig(const NexmarkConfig& config);

/// event_type int32, person struct<8>, auction struct<10>, bid struct<7>, dateTime
/// timestamp[ms, UTC]. Only the struct matching event_type is non-null.
std::shared_ptr<arrow::Schema> CombinedSchema();
/// id, name, emailAddress, creditCard, city, state, dateTime, extra.
std::shared_ptr<arrow::Schema> PersonSchema();
/// id, itemName, description, initialBid, reserve, dateTime, expires, seller,
/// category, extra.
std::shared_ptr<arrow::Schema> AuctionSchema();
/// auction, bidder, price, channel, url, dateTime, extra.
std::shared_ptr<arrow::Schema> BidSchema();
/// The schema of `view` ("combined", "bid", "auction", "person"); null if unknown.
std::shared_ptr<arrow::Schema> SchemaForView(const std::string& view);

/// Generates one split of the Nexmark event sequence as Arrow record batches.
///
/// Split `split_index` of `num_splits` owns a disjoint range of event ids (Flink
/// NexmarkSource: split i starts at id 1 + i * (max_events div num_splits), the
/// last split takes the remainder) while every split shares one event-time
/// timeline. Field values come from a PRNG seeded per event from (seed, event id),
/// so the same config yields byte-identical data whatever the batch size, and a
/// per-entity view equals the combined stream filtered by event_type and
/// flattened.
///
/// Threading: not thread-safe; one generator per thread. The shared lookup tables
/// are immutable and may be shared between generators.
class NexmarkGenerator {
 public:
  /// An invalid config is reported by the first NextBatch call (see also Make).
  NexmarkGenerator(NexmarkConfig config, int split_index, int num_splits,
                   arrow::MemoryPool* pool = arrow::default_memory_pool());
  ~NexmarkGenerator();
  NexmarkGenerator(const NexmarkGenerator&) = delete;
  NexmarkGenerator& operator=(const NexmarkGenerator&) = delete;

  /// Validates the config and the split arguments before constructing.
  static arrow::Result<std::unique_ptr<NexmarkGenerator>> Make(
      NexmarkConfig config, int split_index, int num_splits,
      arrow::MemoryPool* pool = arrow::default_memory_pool());

  const NexmarkConfig& config() const;
  /// The schema of the configured view.
  std::shared_ptr<arrow::Schema> schema() const;

  /// The next batch of config().batch_size rows (fewer only at the end of the
  /// split), or nullptr once the split is exhausted. After an error every later
  /// call returns the same error.
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> NextBatch();
  /// Like NextBatch, but covers at most `max_events` events of the sequence (all
  /// kinds). The batch may have 0 rows for a per-entity view; nullptr still means
  /// the split is exhausted.
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> NextBatch(int64_t max_events);

  /// Events of the sequence covered so far, all kinds, including those a
  /// per-entity view skipped.
  int64_t events_generated() const;
  /// Events this split covers in total (its share of num_events).
  int64_t split_num_events() const;
  /// Positions the split after its first `events` events, as if they had been
  /// generated (restoring a checkpointed position; every event is a function of
  /// its id, so nothing else needs replaying). Call between batches.
  arrow::Status SkipTo(int64_t events);
  bool exhausted() const;
  /// dateTime (before any occasional delay) of the next event of this split.
  int64_t next_event_time_ms() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sabot::nexmark
