#include "sabot/connectors/memory/memory.h"

#include <arrow/array/builder_primitive.h>

namespace sabot {

void CollectBuffer::Append(std::shared_ptr<arrow::RecordBatch> batch) {
  std::lock_guard<std::mutex> lock(mutex_);
  batches_.push_back(std::move(batch));
}

std::vector<std::shared_ptr<arrow::RecordBatch>> CollectBuffer::batches() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return batches_;
}

int64_t CollectBuffer::num_rows() const {
  std::lock_guard<std::mutex> lock(mutex_);
  int64_t n = 0;
  for (const auto& b : batches_) n += b->num_rows();
  return n;
}

arrow::Result<std::shared_ptr<arrow::Table>> CollectBuffer::ToTable(
    const std::shared_ptr<arrow::Schema>& schema) const {
  auto batches = this->batches();
  if (batches.empty()) {
    if (!schema)
      return arrow::Status::Invalid("collect: no rows and no schema to build a table");
    return arrow::Table::MakeEmpty(schema);
  }
  return arrow::Table::FromRecordBatches(batches.front()->schema(), batches);
}

namespace {

/// Split s of S emits batches s, s+S, s+2S, ... Checkpoints write each split's
/// next batch index (operator-state table "splits"); a restore keeps the number
/// of splits and gives reader i of P the splits s with s % P == i.
class BatchesSource : public SourceReader {
 public:
  BatchesSource(const BatchesSourceOptions& options, int instance, int parallelism)
      : options_(options), num_splits_(parallelism) {
    splits_.push_back({instance, static_cast<size_t>(instance)});
  }

  arrow::Status Open(OperatorContext* ctx) override {
    if (ctx == nullptr || ctx->restore == nullptr) return arrow::Status::OK();
    ARROW_ASSIGN_OR_RAISE(auto batches, ctx->restore->ReadOperatorState("splits"));
    if (batches.empty()) return arrow::Status::OK();
    const int instance = ctx->instance_index;
    const int parallelism = ctx->parallelism;
    splits_.clear();
    for (const auto& batch : batches) {
      auto split =
          std::dynamic_pointer_cast<arrow::Int32Array>(batch->GetColumnByName("split"));
      auto num = std::dynamic_pointer_cast<arrow::Int32Array>(
          batch->GetColumnByName("num_splits"));
      auto next =
          std::dynamic_pointer_cast<arrow::Int64Array>(batch->GetColumnByName("next"));
      if (!split || !num || !next) {
        return arrow::Status::Invalid(
            "batches_source: checkpointed positions have an unexpected schema: ",
            batch->schema()->ToString());
      }
      for (int64_t r = 0; r < batch->num_rows(); ++r) {
        num_splits_ = num->Value(r);
        if (split->Value(r) % parallelism != instance) continue;
        splits_.push_back({split->Value(r), static_cast<size_t>(next->Value(r))});
      }
    }
    return arrow::Status::OK();
  }

  arrow::Status SnapshotState(SnapshotWriter* writer) override {
    arrow::Int32Builder split_b, num_b;
    arrow::Int64Builder next_b;
    for (const auto& s : splits_) {
      ARROW_RETURN_NOT_OK(split_b.Append(s.index));
      ARROW_RETURN_NOT_OK(num_b.Append(num_splits_));
      ARROW_RETURN_NOT_OK(next_b.Append(static_cast<int64_t>(s.next)));
    }
    std::shared_ptr<arrow::Array> a, b, c;
    ARROW_RETURN_NOT_OK(split_b.Finish(&a));
    ARROW_RETURN_NOT_OK(num_b.Finish(&b));
    ARROW_RETURN_NOT_OK(next_b.Finish(&c));
    auto schema = arrow::schema({arrow::field("split", arrow::int32(), false),
                                 arrow::field("num_splits", arrow::int32(), false),
                                 arrow::field("next", arrow::int64(), false)});
    return writer->WriteOperatorState(
        "splits", arrow::RecordBatch::Make(schema, static_cast<int64_t>(splits_.size()),
                                           {a, b, c}));
  }

  arrow::Result<PollResult> Poll(StreamElement* out) override {
    const size_t step = static_cast<size_t>(num_splits_);
    for (size_t k = 0; k < splits_.size(); ++k) {
      Split& s = splits_[(cursor_ + k) % splits_.size()];
      if (s.next >= options_.batches.size()) continue;
      *out = StreamElement::Batch(options_.batches[s.next]);
      s.next += step;
      cursor_ = (cursor_ + k + 1) % splits_.size();
      return PollResult::kElement;
    }
    return PollResult::kEndOfInput;
  }

 private:
  struct Split {
    int index;
    size_t next;
  };
  const BatchesSourceOptions& options_;
  int num_splits_;
  std::vector<Split> splits_;
  size_t cursor_ = 0;
};

class FunctionSource : public SourceReader {
 public:
  explicit FunctionSource(const FunctionSourceOptions& options) : options_(options) {}

  arrow::Result<PollResult> Poll(StreamElement* out) override {
    ARROW_ASSIGN_OR_RAISE(auto batch, options_.next());
    if (!batch) return PollResult::kEndOfInput;
    *out = StreamElement::Batch(std::move(batch));
    return PollResult::kElement;
  }

 private:
  const FunctionSourceOptions& options_;
};

class CollectSink : public Operator {
 public:
  explicit CollectSink(std::shared_ptr<CollectBuffer> buffer)
      : buffer_(std::move(buffer)) {}
  arrow::Status ProcessBatch(int, const std::shared_ptr<arrow::RecordBatch>& batch,
                             OperatorContext*, Collector*) override {
    buffer_->Append(batch);
    return arrow::Status::OK();
  }

 private:
  std::shared_ptr<CollectBuffer> buffer_;
};

class BlackholeSink : public Operator {
 public:
  explicit BlackholeSink(std::shared_ptr<std::atomic<int64_t>> rows)
      : rows_(std::move(rows)) {}
  arrow::Status ProcessBatch(int, const std::shared_ptr<arrow::RecordBatch>& batch,
                             OperatorContext*, Collector*) override {
    rows_->fetch_add(batch->num_rows(), std::memory_order_relaxed);
    return arrow::Status::OK();
  }

 private:
  std::shared_ptr<std::atomic<int64_t>> rows_;
};

}  // namespace

void RegisterMemoryConnectors(OperatorRegistry* registry) {
  ARROW_CHECK_OK(registry->AddSource("batches_source",
                                     [](const PlanNode& node, int i, int p)
                                         -> arrow::Result<std::unique_ptr<SourceReader>> {
                                       return std::make_unique<BatchesSource>(
                                           node.options_as<BatchesSourceOptions>(), i, p);
                                     }));
  ARROW_CHECK_OK(registry->AddSource(
      "function_source",
      [](const PlanNode& node, int,
         int p) -> arrow::Result<std::unique_ptr<SourceReader>> {
        if (p != 1) {
          return arrow::Status::Invalid(
              node.name, ": a function/iterable source runs with parallelism 1, not ", p);
        }
        return std::make_unique<FunctionSource>(node.options_as<FunctionSourceOptions>());
      }));
  ARROW_CHECK_OK(registry->AddOperator(
      "collect_sink",
      [](const PlanNode& node, int, int) -> arrow::Result<std::unique_ptr<Operator>> {
        return std::make_unique<CollectSink>(
            node.options_as<CollectSinkOptions>().buffer);
      }));
  ARROW_CHECK_OK(registry->AddOperator(
      "blackhole_sink",
      [](const PlanNode& node, int, int) -> arrow::Result<std::unique_ptr<Operator>> {
        return std::make_unique<BlackholeSink>(
            node.options_as<BlackholeSinkOptions>().rows);
      }));
}

}  // namespace sabot
