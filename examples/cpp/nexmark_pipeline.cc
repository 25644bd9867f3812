// A C++ DataStream job: Nexmark bids -> q1-style currency conversion -> filter ->
// key_by(auction) -> collect, then a check of the result against a direct
// computation over the same generated bids. Built by `make`, run by the tests.
#include <iostream>

#include "sabot/api/datastream.h"
#include "sabot/connectors/nexmark/nexmark_source.h"

namespace cp = arrow::compute;

arrow::Status Run() {
  sabot::nexmark::NexmarkConfig config;
  config.num_events = 200000;
  config.view = "bid";

  sabot::JobOptions options;
  options.parallelism = 2;
  auto env = sabot::StreamEnvironment::Make(options);
  auto bids = env->FromSource(
      "nexmark_source", std::make_shared<sabot::nexmark::NexmarkSourceOptions>(config));
  auto expensive =
      bids.Select({cp::field_ref("auction"), cp::field_ref("bidder"),
                   cp::call("multiply", {cp::field_ref("price"), cp::literal(0.908)})},
                  {"auction", "bidder", "price_eur"})
          .Filter(cp::greater(cp::field_ref("price_eur"), cp::literal(1e6)))
          .KeyBy({"auction"})
          .Collect();
  ARROW_ASSIGN_OR_RAISE(auto result, env->Execute());
  ARROW_ASSIGN_OR_RAISE(auto table, expensive->ToTable());

  // Reference: the same bids generated directly, filtered row by row.
  int64_t expected = 0;
  for (int split = 0; split < 2; ++split) {
    sabot::nexmark::NexmarkGenerator generator(config, split, 2);
    for (;;) {
      ARROW_ASSIGN_OR_RAISE(auto batch, generator.NextBatch());
      if (!batch) break;
      auto price =
          std::static_pointer_cast<arrow::Int64Array>(batch->GetColumnByName("price"));
      for (int64_t i = 0; i < price->length(); ++i)
        expected += price->Value(i) * 0.908 > 1e6;
    }
  }
  std::cout << result.metrics.ToString();
  std::cout << "bids over 1M EUR cents: " << table->num_rows() << " (expected "
            << expected << ")\n";
  if (table->num_rows() != expected)
    return arrow::Status::Invalid("result differs from reference");
  return arrow::Status::OK();
}

int main() {
  auto st = Run();
  if (!st.ok()) {
    std::cerr << "example failed: " << st.ToString() << "\n";
    return 1;
  }
  return 0;
}
