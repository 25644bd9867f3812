#include "sabot/connectors/memory/memory.h"

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

class BatchesSource : public SourceReader {
 public:
  BatchesSource(const BatchesSourceOptions& options, int instance, int parallelism)
      : options_(options),
        next_(static_cast<size_t>(instance)),
        step_(static_cast<size_t>(parallelism)) {}

  arrow::Result<PollResult> Poll(StreamElement* out) override {
    if (next_ >= options_.batches.size()) return PollResult::kEndOfInput;
    *out = StreamElement::Batch(options_.batches[next_]);
    next_ += step_;
    return PollResult::kElement;
  }

 private:
  const BatchesSourceOptions& options_;
  size_t next_, step_;
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
