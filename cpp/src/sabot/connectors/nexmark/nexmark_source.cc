#include "sabot/connectors/nexmark/nexmark_source.h"

#include <algorithm>
#include <chrono>
#include <limits>
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
  if (generator_) return arrow::Status::OK();
  ARROW_ASSIGN_OR_RAISE(generator_,
                        NexmarkGenerator::Make(config_, split_index_, num_splits_, pool));
  return arrow::Status::OK();
}

arrow::Status NexmarkSourceReader::Open(OperatorContext* ctx) {
  return EnsureGenerator(
      ctx != nullptr && ctx->pool != nullptr ? ctx->pool : arrow::default_memory_pool());
}

int64_t NexmarkSourceReader::RateBudget() {
  const int64_t rate = config_.rate_limit;
  const int64_t now = NowNs();
  if (!clock_started_) {
    clock_started_ = true;
    wall_base_ns_ = now;
  }
  const int64_t remaining =
      generator_->split_num_events() - generator_->events_generated();
  // Wait for a slice of ~10 ms of events (at least one, at most a batch) so that a
  // fast rate does not turn into a stream of tiny batches.
  const int64_t slice = std::clamp<int64_t>(
      static_cast<int64_t>(static_cast<double>(rate) * kRateSliceNs / 1e9), 1,
      std::min(config_.batch_size, std::max<int64_t>(remaining, 1)));
  auto budget_at = [&](int64_t t) {
    const double allowed =
        static_cast<double>(t - wall_base_ns_) * 1e-9 * static_cast<double>(rate) + 1.0;
    return static_cast<int64_t>(allowed) - generator_->events_generated();
  };
  int64_t budget = budget_at(now);
  if (budget < slice) {
    // Sleep until the slice is due, but never more than kMaxSleepNs in one Poll.
    const double due_ns =
        static_cast<double>(generator_->events_generated() + slice - 1) /
        static_cast<double>(rate) * 1e9;
    const int64_t wait_ns = static_cast<int64_t>(due_ns) - (now - wall_base_ns_);
    std::this_thread::sleep_for(
        std::chrono::nanoseconds(std::clamp<int64_t>(wait_ns, 0, kMaxSleepNs)));
    budget = budget_at(NowNs());
    if (budget < slice) return 0;
  }
  return budget;
}

arrow::Result<PollResult> NexmarkSourceReader::Poll(StreamElement* out) {
  ARROW_RETURN_NOT_OK(EnsureGenerator(arrow::default_memory_pool()));
  if (generator_->exhausted()) return PollResult::kEndOfInput;
  int64_t max_events = std::numeric_limits<int64_t>::max();
  if (config_.rate_limit > 0) {
    max_events = RateBudget();
    if (max_events == 0) return PollResult::kNotReady;
  }
  ARROW_ASSIGN_OR_RAISE(auto batch, generator_->NextBatch(max_events));
  if (batch == nullptr) return PollResult::kEndOfInput;
  if (batch->num_rows() == 0) {
    return generator_->exhausted() ? PollResult::kEndOfInput : PollResult::kNotReady;
  }
  *out = StreamElement::Batch(std::move(batch));
  return PollResult::kElement;
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
