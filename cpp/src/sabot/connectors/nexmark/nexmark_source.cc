#include "sabot/connectors/nexmark/nexmark_source.h"

#include <arrow/array/builder_primitive.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <map>
#include <sstream>
#include <thread>

namespace sabot::nexmark {

namespace {

/// Longest sleep inside one Poll while the rate limit holds the reader back.
constexpr int64_t kMaxSleepNs = 2'000'000;
/// A rate-limited batch carries about this much wall time worth of events.
constexpr int64_t kRateSliceNs = 10'000'000;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::string NexmarkSourceOptions::ToString() const {
  const NexmarkConfig& c = config;
  std::ostringstream os;
  os << "nexmark_source(view=" << c.view << ", num_events=" << c.num_events
     << ", first_event_rate=" << c.first_event_rate
     << ", num_generators=" << c.num_generators << ", base_time_ms=" << c.base_time_ms
     << ", seed=" << c.seed << ", proportions=" << c.person_proportion << "/"
     << c.auction_proportion << "/" << c.bid_proportion
     << ", hot_ratios=" << c.hot_auction_ratio << "/" << c.hot_sellers_ratio << "/"
     << c.hot_bidders_ratio << ", num_in_flight_auctions=" << c.num_in_flight_auctions
     << ", num_active_people=" << c.num_active_people
     << ", avg_byte_sizes=" << c.avg_person_byte_size << "/" << c.avg_auction_byte_size
     << "/" << c.avg_bid_byte_size
     << ", out_of_order_group_size=" << c.out_of_order_group_size
     << ", occasional_delay_ms=" << c.occasional_delay_ms
     << ", prob_delayed_event=" << c.prob_delayed_event << ", rate_limit=" << c.rate_limit
     << ", batch_size=" << c.batch_size << ")";
  return os.str();
}

NexmarkSourceReader::NexmarkSourceReader(NexmarkConfig config, int split_index,
                                         int num_splits)
    : config_(std::move(config)), split_index_(split_index), num_splits_(num_splits) {}

arrow::Status NexmarkSourceReader::EnsureGenerator(arrow::MemoryPool* pool) {
  if (opened_) return arrow::Status::OK();
  opened_ = true;
  Split split;
  split.index = split_index_;
  ARROW_ASSIGN_OR_RAISE(split.generator,
                        NexmarkGenerator::Make(config_, split_index_, num_splits_, pool));
  splits_.push_back(std::move(split));
  return arrow::Status::OK();
}

arrow::Status NexmarkSourceReader::Open(OperatorContext* ctx) {
  arrow::MemoryPool* pool =
      ctx != nullptr && ctx->pool != nullptr ? ctx->pool : arrow::default_memory_pool();
  if (ctx == nullptr || ctx->restore == nullptr) return EnsureGenerator(pool);
  ARROW_ASSIGN_OR_RAISE(auto batches, ctx->restore->ReadOperatorState("splits"));
  if (batches.empty()) return EnsureGenerator(pool);  // nothing checkpointed: fresh
  // Every old reader wrote its splits' positions; keep the splits that map to
  // this reader under the new parallelism (the number of splits never changes).
  std::map<int, int64_t> positions;
  int checkpoint_splits = -1;
  for (const auto& batch : batches) {
    auto split_col =
        std::dynamic_pointer_cast<arrow::Int32Array>(batch->GetColumnByName("split"));
    auto num_col = std::dynamic_pointer_cast<arrow::Int32Array>(
        batch->GetColumnByName("num_splits"));
    auto events_col =
        std::dynamic_pointer_cast<arrow::Int64Array>(batch->GetColumnByName("events"));
    if (!split_col || !num_col || !events_col) {
      return arrow::Status::Invalid(
          "nexmark_source: checkpointed split positions have an unexpected schema: ",
          batch->schema()->ToString());
    }
    for (int64_t r = 0; r < batch->num_rows(); ++r) {
      const int split = split_col->Value(r);
      const int n = num_col->Value(r);
      if (checkpoint_splits >= 0 && n != checkpoint_splits) {
        return arrow::Status::Invalid(
            "nexmark_source: checkpointed positions disagree on "
            "the number of splits (",
            checkpoint_splits, " and ", n, ")");
      }
      checkpoint_splits = n;
      if (split < 0 || split >= n ||
          !positions.emplace(split, events_col->Value(r)).second) {
        return arrow::Status::Invalid("nexmark_source: checkpointed split ", split,
                                      " of ", n, " is out of range or listed twice");
      }
    }
  }
  if (static_cast<int>(positions.size()) != checkpoint_splits) {
    return arrow::Status::Invalid("nexmark_source: the checkpoint has the positions of ",
                                  positions.size(), " of its ", checkpoint_splits,
                                  " splits");
  }
  opened_ = true;
  splits_.clear();
  for (const auto& [index, events] : positions) {
    if (index % num_splits_ != split_index_) continue;
    Split split;
    split.index = index;
    ARROW_ASSIGN_OR_RAISE(
        split.generator, NexmarkGenerator::Make(config_, index, checkpoint_splits, pool));
    ARROW_RETURN_NOT_OK(split.generator->SkipTo(events));
    splits_.push_back(std::move(split));
  }
  num_splits_ = checkpoint_splits;
  return arrow::Status::OK();
}

arrow::Status NexmarkSourceReader::SnapshotState(SnapshotWriter* writer) {
  ARROW_RETURN_NOT_OK(EnsureGenerator(arrow::default_memory_pool()));
  arrow::Int32Builder split_b, num_b;
  arrow::Int64Builder events_b;
  for (const auto& split : splits_) {
    ARROW_RETURN_NOT_OK(split_b.Append(split.index));
    ARROW_RETURN_NOT_OK(num_b.Append(num_splits_));
    ARROW_RETURN_NOT_OK(events_b.Append(split.generator->events_generated()));
  }
  std::shared_ptr<arrow::Array> split_a, num_a, events_a;
  ARROW_RETURN_NOT_OK(split_b.Finish(&split_a));
  ARROW_RETURN_NOT_OK(num_b.Finish(&num_a));
  ARROW_RETURN_NOT_OK(events_b.Finish(&events_a));
  auto schema = arrow::schema({arrow::field("split", arrow::int32(), false),
                               arrow::field("num_splits", arrow::int32(), false),
                               arrow::field("events", arrow::int64(), false)});
  return writer->WriteOperatorState(
      "splits", arrow::RecordBatch::Make(schema, static_cast<int64_t>(splits_.size()),
                                         {split_a, num_a, events_a}));
}

int64_t NexmarkSourceReader::RateBudget(Split* split) {
  NexmarkGenerator* generator = split->generator.get();
  const int64_t rate = config_.rate_limit;
  const int64_t now = NowNs();
  if (!split->clock_started) {
    split->clock_started = true;
    split->wall_base_ns = now;
    split->clock_base_events = generator->events_generated();
  }
  const int64_t done = generator->events_generated() - split->clock_base_events;
  const int64_t remaining = generator->split_num_events() - generator->events_generated();
  // Wait for a slice of ~10 ms of events (at least one, at most a batch) so that a
  // fast rate does not turn into a stream of tiny batches.
  const int64_t slice = std::clamp<int64_t>(
      static_cast<int64_t>(static_cast<double>(rate) * kRateSliceNs / 1e9), 1,
      std::min(config_.batch_size, std::max<int64_t>(remaining, 1)));
  auto budget_at = [&](int64_t t) {
    const double allowed =
        static_cast<double>(t - split->wall_base_ns) * 1e-9 * static_cast<double>(rate) +
        1.0;
    return static_cast<int64_t>(allowed) - done;
  };
  int64_t budget = budget_at(now);
  if (budget < slice) {
    // Sleep until the slice is due, but never more than kMaxSleepNs in one Poll.
    const double due_ns =
        static_cast<double>(done + slice - 1) / static_cast<double>(rate) * 1e9;
    const int64_t wait_ns = static_cast<int64_t>(due_ns) - (now - split->wall_base_ns);
    std::this_thread::sleep_for(
        std::chrono::nanoseconds(std::clamp<int64_t>(wait_ns, 0, kMaxSleepNs)));
    budget = budget_at(NowNs());
    if (budget < slice) return 0;
  }
  return budget;
}

arrow::Result<PollResult> NexmarkSourceReader::PollSplit(Split* split,
                                                         StreamElement* out) {
  NexmarkGenerator* generator = split->generator.get();
  if (generator->exhausted()) return PollResult::kEndOfInput;
  int64_t max_events = std::numeric_limits<int64_t>::max();
  if (config_.rate_limit > 0) {
    max_events = RateBudget(split);
    if (max_events == 0) return PollResult::kNotReady;
  }
  ARROW_ASSIGN_OR_RAISE(auto batch, generator->NextBatch(max_events));
  if (batch == nullptr) return PollResult::kEndOfInput;
  if (batch->num_rows() == 0) {
    return generator->exhausted() ? PollResult::kEndOfInput : PollResult::kNotReady;
  }
  *out = StreamElement::Batch(std::move(batch));
  return PollResult::kElement;
}

arrow::Result<PollResult> NexmarkSourceReader::Poll(StreamElement* out) {
  ARROW_RETURN_NOT_OK(EnsureGenerator(arrow::default_memory_pool()));
  // Round robin over the splits this reader owns (one, unless restored at a
  // lower parallelism than the checkpoint's).
  bool any_open = false;
  for (size_t k = 0; k < splits_.size(); ++k) {
    Split& split = splits_[(next_split_ + k) % splits_.size()];
    ARROW_ASSIGN_OR_RAISE(PollResult r, PollSplit(&split, out));
    if (r == PollResult::kEndOfInput) continue;
    any_open = true;
    if (r == PollResult::kElement) {
      next_split_ = (next_split_ + k + 1) % splits_.size();
      return r;
    }
  }
  return any_open ? PollResult::kNotReady : PollResult::kEndOfInput;
}

arrow::Result<std::unique_ptr<SourceReader>> MakeNexmarkSourceReader(NexmarkConfig config,
                                                                     int split_index,
                                                                     int num_splits) {
  ARROW_RETURN_NOT_OK(ValidateConfig(config));
  if (num_splits < 1 || split_index < 0 || split_index >= num_splits) {
    return arrow::Status::Invalid("nexmark_source: split ", split_index, " of ",
                                  num_splits, " is out of range");
  }
  return std::make_unique<NexmarkSourceReader>(std::move(config), split_index,
                                               num_splits);
}

void RegisterNexmarkSource(OperatorRegistry* registry) {
  auto factory = [](const PlanNode& node, int instance_index,
                    int parallelism) -> arrow::Result<std::unique_ptr<SourceReader>> {
    NexmarkConfig config;
    if (node.options != nullptr) {
      const auto* options = dynamic_cast<const NexmarkSourceOptions*>(node.options.get());
      if (options == nullptr) {
        return arrow::Status::Invalid(
            "source '", node.name, "' of kind nexmark_source needs NexmarkSourceOptions");
      }
      config = options->config;
    }
    auto reader = MakeNexmarkSourceReader(std::move(config), instance_index, parallelism);
    if (!reader.ok()) {
      return reader.status().WithMessage("source '", node.name,
                                         "': ", reader.status().message());
    }
    return reader;
  };
  // A second registration fails with AlreadyExists and leaves the first in place.
  (void)registry->AddSource("nexmark_source", std::move(factory));
}

}  // namespace sabot::nexmark
