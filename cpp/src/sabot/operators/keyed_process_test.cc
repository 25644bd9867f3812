// Keyed state in operators: the keyed_process operator (a user function with
// value/list/map/reducing/aggregating state) and deduplicate, on both
// backends, through the DataStream API and through snapshot + restore at
// another parallelism (MemorySnapshot), checked against plain references.
#include "sabot/operators/keyed_process.h"

#include <arrow/api.h>
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <tuple>

#include "sabot/api/datastream.h"
#include "sabot/exec/partitioner.h"
#include "sabot/operators/changelog.h"
#include "sabot/operators/deduplicate.h"
#include "sabot/plan/registry.h"

namespace sabot {
namespace {

std::shared_ptr<arrow::Schema> KvSchema() {
  return arrow::schema({arrow::field("k", arrow::int64()),
                        arrow::field("v", arrow::int64()),
                        arrow::field("t", arrow::int64())});
}

std::shared_ptr<arrow::RecordBatch> Rows(const std::vector<int64_t>& k,
                                         const std::vector<int64_t>& v,
                                         const std::vector<int64_t>& t) {
  arrow::Int64Builder kb, vb, tb;
  EXPECT_TRUE(kb.AppendValues(k).ok());
  EXPECT_TRUE(vb.AppendValues(v).ok());
  EXPECT_TRUE(tb.AppendValues(t).ok());
  return arrow::RecordBatch::Make(
      KvSchema(), static_cast<int64_t>(k.size()),
      {kb.Finish().ValueOrDie(), vb.Finish().ValueOrDie(), tb.Finish().ValueOrDie()});
}

std::vector<std::shared_ptr<arrow::RecordBatch>> RandomBatches(uint64_t seed, int batches,
                                                               int keys) {
  std::mt19937_64 rng(seed);
  std::vector<std::shared_ptr<arrow::RecordBatch>> out;
  int64_t t = 0;
  for (int b = 0; b < batches; ++b) {
    std::vector<int64_t> k, v, ts;
    const int n = 1 + static_cast<int>(rng() % 300);
    for (int i = 0; i < n; ++i) {
      k.push_back(static_cast<int64_t>(rng() % keys));
      v.push_back(static_cast<int64_t>(rng() % 1000));
      ts.push_back(static_cast<int64_t>(rng() % 100000));
      ++t;
    }
    out.push_back(Rows(k, v, ts));
  }
  return out;
}

/// Counts rows and sums values per key with every kind of state, and emits
/// (k, count, sum, last_v, n_distinct_v, mean_v) for each distinct key of a batch.
class StatsFunction : public KeyedProcessFunction {
 public:
  arrow::Status Open(KeyedProcessContext* ctx) override {
    ARROW_ASSIGN_OR_RAISE(count_, ctx->GetValueState<int64_t>("count"));
    ARROW_ASSIGN_OR_RAISE(values_, ctx->GetListState<int64_t>("values"));
    ARROW_ASSIGN_OR_RAISE(seen_, (ctx->GetMapState<int64_t, int64_t>("seen")));
    ARROW_ASSIGN_OR_RAISE(
        sum_, ctx->GetReducingState<int64_t>(
                  "sum", [](const int64_t& a, const int64_t& b) { return a + b; }));
    AggregateFunction<int64_t, int64_t, double> max_half{
        [] { return int64_t{0}; },
        [](int64_t* acc, const int64_t& v) { *acc = std::max(*acc, v); },
        [](const int64_t& acc) { return static_cast<double>(acc) / 2; }};
    ARROW_ASSIGN_OR_RAISE(max_half_, (ctx->GetAggregatingState<int64_t, int64_t, double>(
                                         "max_half", max_half)));
    return arrow::Status::OK();
  }

  arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>> ProcessBatch(
      const std::shared_ptr<arrow::RecordBatch>& batch,
      KeyedProcessContext* ctx) override {
    const KeyBatch& keys = ctx->keys();
    const auto& v = static_cast<const arrow::Int64Array&>(*batch->GetColumnByName("v"));
    std::vector<int64_t> vs(v.raw_values(), v.raw_values() + v.length());
    ARROW_ASSIGN_OR_RAISE(auto counts, count_.Get(keys));
    for (int64_t r = 0; r < keys.num_rows(); ++r) {
      auto& c = counts[keys.row_key(r)];
      c = c.value_or(0) + 1;
    }
    ARROW_RETURN_NOT_OK(count_.Put(keys, counts));
    ARROW_RETURN_NOT_OK(values_.AddRows(keys, vs));
    ARROW_RETURN_NOT_OK(sum_.AddRows(keys, vs));
    ARROW_RETURN_NOT_OK(max_half_.AddRows(keys, vs));
    std::vector<MapState<int64_t, int64_t>::Entry> entries;
    for (int64_t r = 0; r < keys.num_rows(); ++r)
      entries.push_back({keys.row_key(r), vs[r], 1});
    ARROW_RETURN_NOT_OK(seen_.Put(keys, entries));
    ARROW_ASSIGN_OR_RAISE(auto lists, values_.Get(keys));
    ARROW_ASSIGN_OR_RAISE(auto sums, sum_.Get(keys));
    ARROW_ASSIGN_OR_RAISE(auto halves, max_half_.Get(keys));
    arrow::Int64Builder kb, cb, sb, lb, db;
    arrow::DoubleBuilder hb;
    const auto& k = static_cast<const arrow::Int64Array&>(*batch->GetColumnByName("k"));
    for (int64_t key = 0; key < keys.num_keys(); ++key) {
      ARROW_RETURN_NOT_OK(kb.Append(k.Value(keys.first_row(key))));
      ARROW_RETURN_NOT_OK(cb.Append(*counts[key]));
      ARROW_RETURN_NOT_OK(sb.Append(*sums[key]));
      ARROW_RETURN_NOT_OK(lb.Append(lists[key].back()));
      ARROW_ASSIGN_OR_RAISE(auto seen, seen_.Entries(keys, key));
      ARROW_RETURN_NOT_OK(db.Append(static_cast<int64_t>(seen.size())));
      ARROW_RETURN_NOT_OK(hb.Append(*halves[key]));
    }
    auto schema = arrow::schema(
        {arrow::field("k", arrow::int64()), arrow::field("count", arrow::int64()),
         arrow::field("sum", arrow::int64()), arrow::field("last", arrow::int64()),
         arrow::field("distinct", arrow::int64()),
         arrow::field("max_half", arrow::float64())});
    ARROW_ASSIGN_OR_RAISE(auto kk, kb.Finish());
    ARROW_ASSIGN_OR_RAISE(auto cc, cb.Finish());
    ARROW_ASSIGN_OR_RAISE(auto ss, sb.Finish());
    ARROW_ASSIGN_OR_RAISE(auto ll, lb.Finish());
    ARROW_ASSIGN_OR_RAISE(auto dd, db.Finish());
    ARROW_ASSIGN_OR_RAISE(auto hh, hb.Finish());
    return std::vector<std::shared_ptr<arrow::RecordBatch>>{
        arrow::RecordBatch::Make(schema, kk->length(), {kk, cc, ss, ll, dd, hh})};
  }

 private:
  ValueState<int64_t> count_;
  ListState<int64_t> values_;
  MapState<int64_t, int64_t> seen_;
  ReducingState<int64_t> sum_;
  AggregatingState<int64_t, int64_t, double> max_half_;
};

struct Expected {
  int64_t count = 0, sum = 0, last = 0, max = 0;
  std::set<int64_t> distinct;
};

std::map<int64_t, Expected> Reference(
    const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches) {
  std::map<int64_t, Expected> want;
  for (const auto& b : batches) {
    const auto& k = static_cast<const arrow::Int64Array&>(*b->column(0));
    const auto& v = static_cast<const arrow::Int64Array&>(*b->column(1));
    for (int64_t i = 0; i < b->num_rows(); ++i) {
      auto& e = want[k.Value(i)];
      ++e.count;
      e.sum += v.Value(i);
      e.last = v.Value(i);
      e.max = std::max(e.max, v.Value(i));
      e.distinct.insert(v.Value(i));
    }
  }
  return want;
}

// The last output row of each key (outputs are running values).
void CheckStats(const std::vector<std::shared_ptr<arrow::RecordBatch>>& outputs,
                const std::map<int64_t, Expected>& want) {
  std::map<int64_t, std::vector<int64_t>> got;
  std::map<int64_t, double> got_half;
  for (const auto& b : outputs) {
    for (int64_t i = 0; i < b->num_rows(); ++i) {
      std::vector<int64_t> row;
      for (int c = 0; c < 5; ++c) {
        row.push_back(static_cast<const arrow::Int64Array&>(*b->column(c)).Value(i));
      }
      got[row[0]] = row;
      got_half[row[0]] = static_cast<const arrow::DoubleArray&>(*b->column(5)).Value(i);
    }
  }
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [key, e] : want) {
    const auto& row = got.at(key);
    EXPECT_EQ(row[1], e.count) << "key " << key;
    EXPECT_EQ(row[2], e.sum) << "key " << key;
    EXPECT_EQ(row[3], e.last) << "key " << key;
    EXPECT_EQ(row[4], static_cast<int64_t>(e.distinct.size())) << "key " << key;
    EXPECT_DOUBLE_EQ(got_half[key], static_cast<double>(e.max) / 2) << "key " << key;
  }
}

KeyedProcessOptions StatsOptions() {
  KeyedProcessOptions o;
  o.description = "stats";
  o.factory = []() -> arrow::Result<std::unique_ptr<KeyedProcessFunction>> {
    return std::make_unique<StatsFunction>();
  };
  return o;
}

class KeyedStateOperatorTest : public ::testing::TestWithParam<std::string> {};

TEST_P(KeyedStateOperatorTest, ProcessThroughTheDataStreamApi) {
  auto batches = RandomBatches(3, 40, 57);
  for (int p : {1, 3}) {
    JobOptions options;
    options.parallelism = p;
    options.num_threads = 2;
    options.state.backend = GetParam();
    auto env = StreamEnvironment::Make(options);
    auto buffer = env->FromBatches(KvSchema(), batches)
                      .KeyBy({"k"})
                      .Process(StatsOptions())
                      .Collect();
    auto result = env->Execute();
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    CheckStats(buffer->batches(), Reference(batches));
  }
}

/// One operator instance driven by hand (Open, batches, snapshot).
struct Instance : Collector {
  PlanNode node;
  StateConfig state;
  OperatorContext ctx;
  std::unique_ptr<Operator> op;
  std::vector<std::shared_ptr<arrow::RecordBatch>> out;

  Instance(const std::string& kind, std::shared_ptr<const NodeOptions> options,
           const std::string& backend, int index, int parallelism,
           SnapshotReader* restore) {
    node.kind = kind;
    node.name = kind + "#1";
    node.options = std::move(options);
    state.backend = backend;
    ctx.operator_name = node.name;
    ctx.instance_index = index;
    ctx.parallelism = parallelism;
    ctx.key_groups = KeyGroupRange::ForInstance(index, parallelism, ctx.max_parallelism);
    ctx.state = &state;
    ctx.restore = restore;
    op = OperatorRegistry::Global()->MakeOperator(node, index, parallelism).ValueOrDie();
    auto st = op->Open(&ctx);
    EXPECT_TRUE(st.ok()) << st.ToString();
    ctx.restore = nullptr;
  }
  arrow::Status Emit(std::shared_ptr<arrow::RecordBatch> batch) override {
    out.push_back(std::move(batch));
    return arrow::Status::OK();
  }
  arrow::Status EmitWatermark(int64_t) override { return arrow::Status::OK(); }
};

// Runs `kind` over the batches at parallelism `p1` (routed by key like key_by),
// snapshots after `split` batches, restores at `p2` and runs the rest.
std::vector<std::shared_ptr<arrow::RecordBatch>> RunWithRestore(
    const std::string& kind, std::shared_ptr<const NodeOptions> options,
    const std::string& backend, const std::string& backend_after,
    const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches, size_t split, int p1,
    int p2) {
  std::vector<std::shared_ptr<arrow::RecordBatch>> outputs;
  MemorySnapshot snapshot(1);
  auto run = [&](int p, size_t from, size_t to, const std::string& be, bool restore,
                 bool snap) {
    std::vector<std::unique_ptr<Instance>> instances;
    for (int i = 0; i < p; ++i) {
      auto reader = snapshot.Reader(kind + "#1", i, p);
      instances.push_back(std::make_unique<Instance>(kind, options, be, i, p,
                                                     restore ? reader.get() : nullptr));
    }
    for (size_t b = from; b < to; ++b) {
      std::vector<std::shared_ptr<arrow::RecordBatch>> parts;
      EXPECT_TRUE(
          PartitionByKey(batches[b], {0}, p, 128, arrow::default_memory_pool(), &parts)
              .ok());
      for (int i = 0; i < p; ++i) {
        if (!parts[i]) continue;
        auto& inst = *instances[i];
        auto st = inst.op->ProcessBatch(0, parts[i], &inst.ctx, &inst);
        EXPECT_TRUE(st.ok()) << st.ToString();
      }
    }
    for (auto& inst : instances) {
      if (snap) {
        auto writer = snapshot.Writer(inst->node.name, inst->ctx.instance_index, p);
        auto st = inst->op->SnapshotState(writer.get(), &inst->ctx);
        EXPECT_TRUE(st.ok()) << st.ToString();
      }
      EXPECT_TRUE(inst->op->Close(&inst->ctx, inst.get()).ok());
      outputs.insert(outputs.end(), inst->out.begin(), inst->out.end());
    }
  };
  run(p1, 0, split, backend, false, true);
  run(p2, split, batches.size(), backend_after, true, false);
  return outputs;
}

TEST_P(KeyedStateOperatorTest, ProcessRestoresAtOtherParallelism) {
  auto batches = RandomBatches(5, 30, 41);
  for (auto [p1, p2] : {std::pair{2, 2}, std::pair{1, 3}, std::pair{4, 2}}) {
    auto options = std::make_shared<KeyedProcessOptions>(StatsOptions());
    options->keys = {"k"};
    auto outputs = RunWithRestore("keyed_process", options, GetParam(), GetParam(),
                                  batches, 12, p1, p2);
    CheckStats(outputs, Reference(batches));
  }
}

// deduplicate: the materialized changelog equals the reference, uninterrupted
// or restored at another parallelism or on the other backend.
TEST_P(KeyedStateOperatorTest, DeduplicateRestoresAtOtherParallelism) {
  auto batches = RandomBatches(9, 30, 37);
  const std::string other = GetParam() == "memory" ? "rocksdb" : "memory";
  for (bool keep_last : {false, true}) {
    for (std::string time : {"", "t"}) {
      std::map<int64_t, std::pair<int64_t, int64_t>> want;  // k -> (v, t)
      for (const auto& b : batches) {
        const auto& k = static_cast<const arrow::Int64Array&>(*b->column(0));
        const auto& v = static_cast<const arrow::Int64Array&>(*b->column(1));
        const auto& t = static_cast<const arrow::Int64Array&>(*b->column(2));
        for (int64_t i = 0; i < b->num_rows(); ++i) {
          auto it = want.find(k.Value(i));
          bool take = it == want.end() ||
                      (time.empty() ? keep_last
                                    : (keep_last ? t.Value(i) >= it->second.second
                                                 : t.Value(i) < it->second.second));
          if (take) want[k.Value(i)] = {v.Value(i), t.Value(i)};
        }
      }
      for (auto [p1, p2, after] :
           {std::tuple{1, 1, GetParam()}, std::tuple{1, 3, GetParam()},
            std::tuple{4, 2, GetParam()}, std::tuple{2, 3, other}}) {
        auto options = std::make_shared<DeduplicateOptions>();
        options->keys = {"k"};
        options->keep_last = keep_last;
        options->time_column = time;
        auto outputs = RunWithRestore("deduplicate", options, GetParam(), after, batches,
                                      15, p1, p2);
        auto table = arrow::Table::FromRecordBatches(outputs).ValueOrDie();
        auto final_rows = MaterializeChangelog(table, {"k"}).ValueOrDie();
        auto rows = final_rows->CombineChunksToBatch().ValueOrDie();
        ASSERT_EQ(rows->num_rows(), static_cast<int64_t>(want.size()));
        const auto& k = static_cast<const arrow::Int64Array&>(*rows->column(0));
        const auto& v = static_cast<const arrow::Int64Array&>(*rows->column(1));
        for (int64_t i = 0; i < rows->num_rows(); ++i) {
          ASSERT_EQ(v.Value(i), want[k.Value(i)].first)
              << "key " << k.Value(i) << " keep_last " << keep_last << " time '" << time
              << "' p " << p1 << "->" << p2 << " on " << after;
        }
      }
    }
  }
}

// A restored deduplicate that takes a checkpoint before its first batch hands
// on the state it restored (the columnar store loads rows only once it knows
// the schema).
TEST_P(KeyedStateOperatorTest, DeduplicateCheckpointBeforeTheFirstBatch) {
  auto batches = RandomBatches(13, 10, 29);
  auto options = std::make_shared<DeduplicateOptions>();
  options->keys = {"k"};
  options->keep_last = true;
  options->time_column = "t";
  MemorySnapshot first(1), second(2);
  for (int i = 0; i < 2; ++i) {
    Instance inst("deduplicate", options, GetParam(), i, 2, nullptr);
    for (size_t b = 0; b < 5; ++b) {
      std::vector<std::shared_ptr<arrow::RecordBatch>> parts;
      ASSERT_TRUE(
          PartitionByKey(batches[b], {0}, 2, 128, arrow::default_memory_pool(), &parts)
              .ok());
      if (parts[i])
        ASSERT_TRUE(inst.op->ProcessBatch(0, parts[i], &inst.ctx, &inst).ok());
    }
    auto writer = first.Writer("deduplicate#1", i, 2);
    ASSERT_TRUE(inst.op->SnapshotState(writer.get(), &inst.ctx).ok());
  }
  for (int i = 0; i < 3; ++i) {  // restore and checkpoint again, no batch between
    auto reader = first.Reader("deduplicate#1", i, 3);
    Instance inst("deduplicate", options, GetParam(), i, 3, reader.get());
    auto writer = second.Writer("deduplicate#1", i, 3);
    ASSERT_TRUE(inst.op->SnapshotState(writer.get(), &inst.ctx).ok());
  }
  auto reader = second.Reader("deduplicate#1", 0, 1);
  Instance inst("deduplicate", options, GetParam(), 0, 1, reader.get());
  for (size_t b = 5; b < batches.size(); ++b) {
    ASSERT_TRUE(inst.op->ProcessBatch(0, batches[b], &inst.ctx, &inst).ok());
  }
  // Every key of the first half that the second half replaces is retracted
  // with the row the first half kept: the restored state is complete.
  std::map<int64_t, std::pair<int64_t, int64_t>> kept;  // k -> (t, v) after half 1
  for (size_t b = 0; b < 5; ++b) {
    const auto& k = static_cast<const arrow::Int64Array&>(*batches[b]->column(0));
    const auto& v = static_cast<const arrow::Int64Array&>(*batches[b]->column(1));
    const auto& t = static_cast<const arrow::Int64Array&>(*batches[b]->column(2));
    for (int64_t i = 0; i < batches[b]->num_rows(); ++i) {
      auto it = kept.find(k.Value(i));
      if (it == kept.end() || t.Value(i) >= it->second.first) {
        kept[k.Value(i)] = {t.Value(i), v.Value(i)};
      }
    }
  }
  int64_t retractions = 0;
  std::set<int64_t> checked;  // later retractions of a key are of second-half rows
  for (const auto& out : inst.out) {
    const auto& k = static_cast<const arrow::Int64Array&>(*out->column(0));
    const auto& v = static_cast<const arrow::Int64Array&>(*out->column(1));
    const auto& op = static_cast<const arrow::Int8Array&>(*out->GetColumnByName("_op"));
    for (int64_t i = 0; i < out->num_rows(); ++i) {
      const int64_t key = k.Value(i);
      auto it = kept.find(key);
      if (op.Value(i) == static_cast<int8_t>(ChangeOp::kInsert)) {
        EXPECT_EQ(it, kept.end()) << "key " << key << " was restored";
      }
      if (op.Value(i) == static_cast<int8_t>(ChangeOp::kUpdateBefore) &&
          checked.insert(key).second) {
        ASSERT_NE(it, kept.end());
        EXPECT_EQ(v.Value(i), it->second.second) << "key " << key;
        ++retractions;
      }
    }
  }
  EXPECT_GT(retractions, 0);
}

TEST_P(KeyedStateOperatorTest, ProcessErrorsNameTheFunction) {
  class Failing : public KeyedProcessFunction {
    arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>> ProcessBatch(
        const std::shared_ptr<arrow::RecordBatch>&, KeyedProcessContext*) override {
      return arrow::Status::Invalid("boom");
    }
  };
  JobOptions options;
  options.parallelism = 1;
  options.state.backend = GetParam();
  auto env = StreamEnvironment::Make(options);
  KeyedProcessOptions o;
  o.description = "my function";
  o.factory = []() -> arrow::Result<std::unique_ptr<KeyedProcessFunction>> {
    return std::make_unique<Failing>();
  };
  env->FromBatches(KvSchema(), {Rows({1}, {2}, {3})}).KeyBy({"k"}).Process(o).Discard();
  auto result = env->Execute();
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("my function failed: boom"), std::string::npos)
      << result.status().ToString();
}

INSTANTIATE_TEST_SUITE_P(Backends, KeyedStateOperatorTest,
                         ::testing::Values("memory", "rocksdb"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace sabot
