// User functions with keyed state ("keyed_process"): a function gets each
// input batch of a keyed stream together with a state accessor, reads and
// writes state for the batch's keys in bulk, and returns output batches.
//
//   class CountFn : public sabot::KeyedProcessFunction {
//     sabot::ValueState<int64_t> count_;
//     arrow::Status Open(sabot::KeyedProcessContext* ctx) override {
//       ARROW_ASSIGN_OR_RAISE(count_, ctx->GetValueState<int64_t>("count"));
//       return arrow::Status::OK();
//     }
//     arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>> ProcessBatch(
//         const std::shared_ptr<arrow::RecordBatch>& batch,
//         sabot::KeyedProcessContext* ctx) override {
//       const sabot::KeyBatch& keys = ctx->keys();  // distinct keys of the batch
//       ARROW_ASSIGN_OR_RAISE(auto counts, count_.Get(keys));
//       for (int64_t r = 0; r < keys.num_rows(); ++r) {
//         auto& c = counts[keys.row_key(r)];
//         c = c.value_or(0) + 1;
//       }
//       ARROW_RETURN_NOT_OK(count_.Put(keys, counts));
//       ...build and return the output batch...
//     }
//   };
//
//   stream.KeyBy({"user"}).Process(KeyedProcessOptions{... factory ...});
//
// The state lives in the job's state backend (memory or RocksDB, see
// state/backend.h), is partitioned by key group like key_by, and is part of
// checkpoints: restore (also at another parallelism) needs no code in the
// function.
#pragma once

#include <arrow/record_batch.h>
#include <arrow/result.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sabot/exec/operator.h"
#include "sabot/plan/plan.h"
#include "sabot/plan/registry.h"
#include "sabot/state/backend.h"
#include "sabot/state/keyed_state.h"

namespace sabot {

/// The state accessor of a keyed function: declares states (in Open) and gives
/// the keys of the batch being processed.
///
/// Threading contract: valid on the operator instance's thread, for the life
/// of the operator; keys() only during ProcessBatch.
class KeyedProcessContext {
 public:
  KeyedProcessContext(KeyedStateBackend* backend, OperatorContext* op,
                      std::vector<std::string> key_columns)
      : backend_(backend), op_(op), key_columns_(std::move(key_columns)) {}

  KeyedStateBackend* backend() const { return backend_; }
  /// Runtime facts (operator name, instance, parallelism, pool).
  OperatorContext* op() const { return op_; }
  const std::vector<std::string>& key_columns() const { return key_columns_; }
  /// The distinct keys of the current batch (encoded once per batch).
  const KeyBatch& keys() const { return *keys_; }
  /// Processing time, ms (the clock TTL uses).
  int64_t NowMs() const { return backend_->NowMs(); }

  /// Encodes other key values (arrays of the key column types) and checks that
  /// this instance owns them (state of keys routed elsewhere would be lost).
  arrow::Result<KeyBatch> EncodeKeys(
      const std::vector<std::shared_ptr<arrow::Array>>& key_columns) const;

  template <typename T, typename Serde = StateSerde<T>>
  arrow::Result<ValueState<T, Serde>> GetValueState(std::string name,
                                                    StateTtlConfig ttl = {}) {
    return ValueState<T, Serde>::Declare(backend_, std::move(name), ttl);
  }
  template <typename T, typename Serde = StateSerde<T>>
  arrow::Result<ListState<T, Serde>> GetListState(std::string name,
                                                  StateTtlConfig ttl = {}) {
    return ListState<T, Serde>::Declare(backend_, std::move(name), ttl);
  }
  template <typename K, typename V, typename KS = StateSerde<K>,
            typename VS = StateSerde<V>>
  arrow::Result<MapState<K, V, KS, VS>> GetMapState(std::string name,
                                                    StateTtlConfig ttl = {}) {
    return MapState<K, V, KS, VS>::Declare(backend_, std::move(name), ttl);
  }
  template <typename T, typename Serde = StateSerde<T>>
  arrow::Result<ReducingState<T, Serde>> GetReducingState(
      std::string name, typename ReducingState<T, Serde>::ReduceFunction reduce,
      StateTtlConfig ttl = {}) {
    return ReducingState<T, Serde>::Declare(backend_, std::move(name), std::move(reduce),
                                            ttl);
  }
  template <typename IN, typename ACC, typename OUT, typename AccSerde = StateSerde<ACC>>
  arrow::Result<AggregatingState<IN, ACC, OUT, AccSerde>> GetAggregatingState(
      std::string name, AggregateFunction<IN, ACC, OUT> function,
      StateTtlConfig ttl = {}) {
    return AggregatingState<IN, ACC, OUT, AccSerde>::Declare(backend_, std::move(name),
                                                             std::move(function), ttl);
  }

  // Used by the operator.
  void set_keys(const KeyBatch* keys) { keys_ = keys; }

 private:
  KeyedStateBackend* backend_;
  OperatorContext* op_;
  std::vector<std::string> key_columns_;
  const KeyBatch* keys_ = nullptr;
};

/// A user function over a keyed stream. One instance per parallel operator
/// instance (made by KeyedProcessOptions::factory), called on one thread.
class KeyedProcessFunction {
 public:
  virtual ~KeyedProcessFunction() = default;
  /// Declares the states (before a restore fills them).
  virtual arrow::Status Open(KeyedProcessContext* ctx) { return arrow::Status::OK(); }
  /// One input batch; ctx->keys() are its keys. Returns zero or more batches
  /// (null entries are skipped).
  virtual arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>> ProcessBatch(
      const std::shared_ptr<arrow::RecordBatch>& batch, KeyedProcessContext* ctx) = 0;
  /// End of input: last batches to emit.
  virtual arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>> Close(
      KeyedProcessContext* ctx) {
    return std::vector<std::shared_ptr<arrow::RecordBatch>>{};
  }
};

/// Options of "keyed_process". Output batches share one schema:
/// `output_schema` when given, otherwise the first output's.
struct KeyedProcessOptions : NodeOptions {
  /// Key columns; empty: the keys of a preceding KeyBy.
  std::vector<std::string> keys;
  /// Makes the function of one parallel instance.
  std::function<arrow::Result<std::unique_ptr<KeyedProcessFunction>>()> factory;
  std::string description = "keyed process function";
  std::shared_ptr<arrow::Schema> output_schema;
  std::string ToString() const override;
};

void RegisterKeyedProcess(OperatorRegistry* registry);

}  // namespace sabot
