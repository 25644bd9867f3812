#include "sabot/operators/deduplicate.h"

#include <arrow/builder.h>
#include <arrow/compute/api_scalar.h>
#include <arrow/compute/cast.h>
#include <arrow/table.h>
#include <arrow/util/logging.h>

#include <cstring>

#include "sabot/exec/partitioner.h"
#include "sabot/operators/changelog.h"
#include "sabot/operators/key_table.h"
#include "sabot/operators/retained_rows.h"
#include "sabot/state/backend.h"
#include "sabot/state/key_codec.h"
#include "sabot/state/memory_backend.h"
#include "sabot/state/value_codec.h"

namespace sabot {

std::string DeduplicateOptions::ToString() const {
  std::string s = "deduplicate(keys [";
  for (size_t i = 0; i < keys.size(); ++i) s += (i ? ", " : "") + keys[i];
  s += std::string("], keep ") + (keep_last ? "last" : "first");
  if (!time_column.empty()) s += " by " + time_column;
  return s + ")";
}

namespace {

constexpr const char* kStateName = "current_row";

/// What both stores share: the options, the resolved columns, output helpers.
class DedupBase {
 public:
  explicit DedupBase(const DeduplicateOptions& o) : o_(o) {}
  virtual ~DedupBase() = default;

  virtual arrow::Status Open(OperatorContext* ctx) = 0;
  virtual arrow::Status Process(const std::shared_ptr<arrow::RecordBatch>& batch,
                                OperatorContext* ctx, Collector* out) = 0;
  virtual arrow::Status Snapshot(SnapshotWriter* writer) = 0;
  virtual arrow::Status NotifyCheckpointComplete(int64_t checkpoint_id) {
    return arrow::Status::OK();
  }

 protected:
  bool arrival_first() const { return !o_.keep_last && time_index_ < 0; }

  arrow::Status Init(const std::shared_ptr<arrow::Schema>& schema, OperatorContext* ctx) {
    ARROW_ASSIGN_OR_RAISE(key_indices_,
                          ResolveKeyColumns(*schema, o_.keys, ctx->operator_name));
    for (int i : key_indices_) key_types_.push_back(schema->field(i)->type());
    if (schema->GetFieldIndex(kChangeOpColumn) >= 0) {
      return arrow::Status::Invalid(ctx->operator_name,
                                    ": the input already has an '_op' column");
    }
    if (!o_.time_column.empty()) {
      time_index_ = schema->GetFieldIndex(o_.time_column);
      if (time_index_ < 0) {
        return arrow::Status::KeyError(ctx->operator_name, ": time column '",
                                       o_.time_column, "' is not in the input schema (",
                                       schema->ToString(false), ")");
      }
    }
    if (!arrival_first()) {  // keep-first by arrival keeps no rows
      ARROW_ASSIGN_OR_RAISE(auto codec, RowCodec::Make(schema, ctx->operator_name));
      row_codec_ = std::make_unique<RowCodec>(std::move(codec));
    }
    schema_ = schema;
    initialized_ = true;
    return arrow::Status::OK();
  }

  arrow::Result<std::shared_ptr<arrow::Int64Array>> Times(
      const arrow::RecordBatch& batch) const {
    if (time_index_ < 0) return nullptr;
    ARROW_ASSIGN_OR_RAISE(
        auto cast, arrow::compute::Cast(*batch.column(time_index_), arrow::int64()));
    return std::static_pointer_cast<arrow::Int64Array>(cast);
  }

  // Should row time `t` replace the kept row (time `current`)?
  bool Replaces(bool has_times, int64_t t, int64_t current) const {
    if (has_times) return o_.keep_last ? t >= current : t < current;
    return o_.keep_last;
  }

  // Rows `rows` of `batch` (indices < its length) and of `extra` (the rest).
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> TakeRows(
      const std::shared_ptr<arrow::RecordBatch>& batch,
      const std::shared_ptr<arrow::RecordBatch>& extra,
      const std::vector<int64_t>& rows) {
    arrow::Int64Builder b(pool_);
    ARROW_RETURN_NOT_OK(b.AppendValues(rows));
    ARROW_ASSIGN_OR_RAISE(auto indices, b.Finish());
    if (!extra) {
      ARROW_ASSIGN_OR_RAISE(arrow::Datum taken, arrow::compute::Take(batch, indices));
      return taken.record_batch();
    }
    ARROW_ASSIGN_OR_RAISE(auto table, arrow::Table::FromRecordBatches({batch, extra}));
    ARROW_ASSIGN_OR_RAISE(arrow::Datum taken, arrow::compute::Take(table, indices));
    return taken.table()->CombineChunksToBatch(pool_);
  }

  // The stored value of a kept row: [time, 8 bytes when ordered by time][row].
  arrow::Status EncodeValues(const arrow::RecordBatch& batch,
                             const std::vector<int64_t>& rows, const int64_t* times,
                             std::vector<std::string>* values) {
    values->assign(rows.size(), std::string());
    if (arrival_first()) return arrow::Status::OK();
    std::vector<std::string*> outs;
    for (size_t j = 0; j < rows.size(); ++j) {
      if (time_index_ >= 0)
        (*values)[j].append(reinterpret_cast<const char*>(&times[j]), 8);
      outs.push_back(&(*values)[j]);
    }
    return row_codec_->Encode(batch, rows, outs);
  }

  const DeduplicateOptions& o_;
  arrow::MemoryPool* pool_ = nullptr;
  int max_parallelism_ = 128;
  bool initialized_ = false;
  std::shared_ptr<arrow::Schema> schema_;
  std::vector<int> key_indices_;
  std::vector<std::shared_ptr<arrow::DataType>> key_types_;
  int time_index_ = -1;
  std::unique_ptr<RowCodec> row_codec_;
};

/// The memory backend: rows stay columnar (references to the input batches,
/// compacted now and then), keys get dense ids from Arrow's grouper, and the
/// state is serialized only when a checkpoint takes it, into the memory
/// backend's snapshot table ("kv/current_row": storage key -> [time][row]),
/// so it restores into either backend. Per-row serialization into a hash map
/// made q18 3.7x slower per CPU second (docs/design/state.md).
class ColumnarStore : public DedupBase {
 public:
  using DedupBase::DedupBase;

  arrow::Status Open(OperatorContext* ctx) override {
    pool_ = ctx->pool;
    max_parallelism_ = ctx->max_parallelism;
    exec_context_ = ctx->exec_context;
    if (!exec_context_) {  // operators driven outside a job (tests)
      own_exec_context_ = std::make_unique<arrow::compute::ExecContext>(pool_);
      exec_context_ = own_exec_context_.get();
    }
    if (!ctx->restore) return arrow::Status::OK();
    // Restore through a memory backend (it reads every snapshot form); the
    // rows are loaded once the first batch tells the schema.
    KeyedStateBackendOptions options = KeyedStateBackendOptions::FromContext(*ctx);
    options.backend = "memory";
    ARROW_ASSIGN_OR_RAISE(restored_, KeyedStateBackend::Make(options));
    ARROW_RETURN_NOT_OK(restored_->Declare({kStateName, StateType::kValue, {}}).status());
    return restored_->Restore(ctx->restore);
  }

  arrow::Status Process(const std::shared_ptr<arrow::RecordBatch>& batch,
                        OperatorContext* ctx, Collector* out) override {
    if (!initialized_) {
      ARROW_RETURN_NOT_OK(Init(batch->schema(), ctx));
      ARROW_ASSIGN_OR_RAISE(key_table_,
                            KeyTable::Make(key_types_, false, exec_context_, pool_));
      ARROW_RETURN_NOT_OK(LoadRestored(ctx));
    }
    const int64_t n = batch->num_rows();
    if (n == 0) return arrow::Status::OK();
    std::vector<std::shared_ptr<arrow::Array>> keys;
    for (int i : key_indices_) keys.push_back(batch->column(i));
    ARROW_ASSIGN_OR_RAISE(auto ids, key_table_->Consume(keys, n));
    const uint32_t num_groups = key_table_->num_groups();
    current_.resize(num_groups, kNone);
    current_time_.resize(num_groups, 0);
    ARROW_ASSIGN_OR_RAISE(auto times, Times(*batch));
    const bool first_by_arrival = arrival_first();
    const int64_t base = first_by_arrival ? 0 : rows_.Add(batch);
    // The winning row per key after this batch, and its row before the batch
    // (previous_ is kept across batches and reset only where touched, so a
    // batch costs O(its rows), not O(keys)).
    std::vector<uint32_t> touched;
    previous_.resize(num_groups, kUntouched);
    auto& previous = previous_;
    const uint32_t* gid = ids->raw_values();
    for (int64_t i = 0; i < n; ++i) {
      const uint32_t g = gid[i];
      int64_t t = 0;
      if (times) {
        if (times->IsNull(i)) continue;
        t = times->Value(i);
      }
      if (current_[g] != kNone && !Replaces(times != nullptr, t, current_time_[g]))
        continue;
      if (previous[g] == kUntouched) {
        previous[g] = current_[g];
        touched.push_back(g);
      }
      current_[g] = base + i;
      current_time_[g] = t;
    }
    std::vector<int64_t> before(touched.size());
    for (size_t j = 0; j < touched.size(); ++j) {
      before[j] = previous[touched[j]];
      previous[touched[j]] = kUntouched;
    }
    if (touched.empty()) return arrow::Status::OK();
    std::vector<ChangeOp> ops;
    std::vector<int64_t> rows;
    if (first_by_arrival) {
      // Only new keys: the rows come straight from this batch.
      for (uint32_t g : touched) {
        rows.push_back(current_[g]);
        ops.push_back(ChangeOp::kInsert);
      }
      ARROW_ASSIGN_OR_RAISE(auto taken, TakeRows(batch, nullptr, rows));
      ARROW_ASSIGN_OR_RAISE(auto result, MakeChangelogBatch(taken, ops, pool_));
      return out->Emit(std::move(result));
    }
    for (size_t j = 0; j < touched.size(); ++j) {
      if (before[j] != kNone) {
        rows.push_back(before[j]);
        ops.push_back(ChangeOp::kUpdateBefore);
        ops.push_back(ChangeOp::kUpdateAfter);
      } else {
        ops.push_back(ChangeOp::kInsert);
      }
      rows.push_back(current_[touched[j]]);
    }
    ARROW_ASSIGN_OR_RAISE(auto taken, rows_.Take(rows, pool_));
    ARROW_ASSIGN_OR_RAISE(auto result,
                          MakeChangelogBatch(Rebind(taken, batch), ops, pool_));
    ARROW_RETURN_NOT_OK(out->Emit(std::move(result)));
    // Keep the retained rows within twice the live ones (plus one batch).
    if (rows_.num_rows() > 2 * static_cast<int64_t>(num_groups) + 4096) {
      std::vector<int64_t*> live;
      for (auto& r : current_) {
        if (r != kNone) live.push_back(&r);
      }
      ARROW_RETURN_NOT_OK(rows_.Compact(live, pool_));
    }
    return arrow::Status::OK();
  }

  arrow::Status Snapshot(SnapshotWriter* writer) override {
    if (!initialized_) {  // no batch since the restore: hand on what was restored
      return restored_ ? restored_->Snapshot(writer) : arrow::Status::OK();
    }
    KeyedStateTableBuilder table(KeyedStateBackend::TableName(kStateName), writer, pool_);
    std::vector<uint32_t> live;
    for (uint32_t g = 0; g < current_.size(); ++g) {
      if (current_[g] != kNone) live.push_back(g);
    }
    std::vector<std::shared_ptr<arrow::Array>> all_keys;
    if (!live.empty()) {
      ARROW_ASSIGN_OR_RAISE(all_keys, key_table_->AllKeys());
    }
    constexpr size_t kChunk = 65536;
    for (size_t begin = 0; begin < live.size(); begin += kChunk) {
      const size_t end = std::min(live.size(), begin + kChunk);
      const int64_t m = static_cast<int64_t>(end - begin);
      arrow::UInt32Builder ids(pool_);
      ARROW_RETURN_NOT_OK(ids.AppendValues(live.data() + begin, m));
      ARROW_ASSIGN_OR_RAISE(auto id_array, ids.Finish());
      arrow::FieldVector fields;
      std::vector<std::shared_ptr<arrow::Array>> key_columns;
      for (size_t c = 0; c < all_keys.size(); ++c) {
        ARROW_ASSIGN_OR_RAISE(auto taken, arrow::compute::Take(all_keys[c], id_array));
        key_columns.push_back(taken.make_array());
        fields.push_back(arrow::field("k" + std::to_string(c), key_types_[c]));
      }
      auto key_batch = arrow::RecordBatch::Make(arrow::schema(fields), m, key_columns);
      std::vector<int> indices(key_columns.size());
      for (size_t c = 0; c < indices.size(); ++c) indices[c] = static_cast<int>(c);
      ARROW_ASSIGN_OR_RAISE(KeyBatch keys,
                            EncodeKeys(*key_batch, indices, max_parallelism_));
      std::vector<std::string> values(static_cast<size_t>(m));
      if (!arrival_first()) {
        std::vector<int64_t> row_ids, times;
        for (size_t j = begin; j < end; ++j) {
          row_ids.push_back(current_[live[j]]);
          times.push_back(current_time_[live[j]]);
        }
        ARROW_ASSIGN_OR_RAISE(auto rows, rows_.Take(row_ids, pool_));
        rows = Rebind(rows, nullptr);
        std::vector<int64_t> positions(static_cast<size_t>(m));
        for (int64_t j = 0; j < m; ++j) positions[j] = j;
        ARROW_RETURN_NOT_OK(EncodeValues(*rows, positions, times.data(), &values));
      }
      for (int64_t j = 0; j < m; ++j) {
        // Distinct groups are distinct keys: key j is row j.
        ARROW_RETURN_NOT_OK(
            table.Add(keys.storage_key(keys.row_key(j)), {}, values[j], false));
      }
    }
    return table.Flush();
  }

 private:
  static constexpr int64_t kNone = -1;
  static constexpr int64_t kUntouched = -3;

  // `rows` with the operator's schema (retained batches may carry other
  // field metadata than the current batch).
  std::shared_ptr<arrow::RecordBatch> Rebind(
      const std::shared_ptr<arrow::RecordBatch>& rows,
      const std::shared_ptr<arrow::RecordBatch>& like) {
    const auto& schema = like ? like->schema() : schema_;
    if (rows->schema()->Equals(*schema)) return rows;
    return arrow::RecordBatch::Make(schema, rows->num_rows(), rows->columns());
  }

  // Moves restored entries into the columnar state.
  arrow::Status LoadRestored(OperatorContext* ctx) {
    if (!restored_) return arrow::Status::OK();
    std::vector<std::string> storage_keys, values;
    ARROW_RETURN_NOT_OK(restored_->ForEach(
        0, [&](std::string_view key, std::string_view, std::string_view value) {
          storage_keys.emplace_back(key);
          values.emplace_back(value);
          return arrow::Status::OK();
        }));
    restored_.reset();
    if (storage_keys.empty()) return arrow::Status::OK();
    std::vector<std::string_view> key_views(storage_keys.begin(), storage_keys.end());
    ARROW_ASSIGN_OR_RAISE(auto key_columns,
                          DecodeKeyColumns(key_views, key_types_, pool_));
    const int64_t n = static_cast<int64_t>(storage_keys.size());
    ARROW_ASSIGN_OR_RAISE(auto ids, key_table_->Consume(key_columns, n));
    current_.resize(key_table_->num_groups(), kNone);
    current_time_.resize(key_table_->num_groups(), 0);
    if (arrival_first()) {
      for (int64_t j = 0; j < n; ++j) current_[ids->Value(j)] = 0;
      return arrow::Status::OK();
    }
    std::vector<std::string_view> row_bytes;
    const size_t skip = time_index_ >= 0 ? 8 : 0;
    for (int64_t j = 0; j < n; ++j) {
      if (values[j].size() < skip) {
        return arrow::Status::Invalid(ctx->operator_name, ": corrupt restored state");
      }
      row_bytes.push_back(std::string_view(values[j]).substr(skip));
    }
    auto decoded = row_codec_->Decode(row_bytes, pool_);
    if (!decoded.ok()) {
      return decoded.status().WithMessage(
          ctx->operator_name, ": the restored rows do not match the input schema (",
          schema_->ToString(false), "): ", decoded.status().message());
    }
    const int64_t base = rows_.Add(*decoded);
    for (int64_t j = 0; j < n; ++j) {
      const uint32_t g = ids->Value(j);
      current_[g] = base + j;
      if (skip) std::memcpy(&current_time_[g], values[j].data(), 8);
    }
    return arrow::Status::OK();
  }

  arrow::compute::ExecContext* exec_context_ = nullptr;
  std::unique_ptr<arrow::compute::ExecContext> own_exec_context_;
  std::unique_ptr<KeyTable> key_table_;
  std::vector<int64_t> current_;  // row id of each key's row (kNone: none yet)
  std::vector<int64_t> current_time_;
  std::vector<int64_t> previous_;  // per key, scratch of Process
  RetainedRows rows_;
  std::unique_ptr<KeyedStateBackend> restored_;  // until the first batch
};

/// A disk-backed backend (RocksDB): per key one value "current_row" (see
/// ColumnarStore), read with one MultiGet of the batch's distinct keys and
/// written with one write of the changed keys per input batch.
class BackendStore : public DedupBase {
 public:
  using DedupBase::DedupBase;

  arrow::Status Open(OperatorContext* ctx) override {
    pool_ = ctx->pool;
    max_parallelism_ = ctx->max_parallelism;
    ARROW_ASSIGN_OR_RAISE(
        backend_, KeyedStateBackend::Make(KeyedStateBackendOptions::FromContext(*ctx)));
    ARROW_ASSIGN_OR_RAISE(state_, backend_->Declare({kStateName, StateType::kValue, {}}));
    return backend_->Restore(ctx->restore);
  }

  arrow::Status Process(const std::shared_ptr<arrow::RecordBatch>& batch,
                        OperatorContext* ctx, Collector* out) override {
    if (!initialized_) ARROW_RETURN_NOT_OK(Init(batch->schema(), ctx));
    const int64_t n = batch->num_rows();
    if (n == 0) return arrow::Status::OK();
    ARROW_ASSIGN_OR_RAISE(KeyBatch keys,
                          EncodeKeys(*batch, key_indices_, max_parallelism_));
    const int64_t num_keys = keys.num_keys();
    ARROW_ASSIGN_OR_RAISE(auto times, Times(*batch));
    ValueBatch stored;
    ARROW_RETURN_NOT_OK(backend_->MultiGet(state_, keys.storage_keys(), &stored));
    std::vector<int64_t> current(static_cast<size_t>(num_keys), kNone);
    std::vector<int64_t> current_time(static_cast<size_t>(num_keys), 0);
    for (int64_t k = 0; k < num_keys; ++k) {
      if (!stored.found(k)) continue;
      current[k] = kStored;
      if (times) {
        if (stored.value(k).size() < 8) {
          return arrow::Status::Invalid(ctx->operator_name,
                                        ": corrupt deduplicate state");
        }
        std::memcpy(&current_time[k], stored.value(k).data(), 8);
      }
    }
    // The winning row per key after this batch, and its row before the batch.
    std::vector<int64_t> touched;
    std::vector<int64_t> previous(static_cast<size_t>(num_keys), kUntouched);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t g = keys.row_key(i);
      int64_t t = 0;
      if (times) {
        if (times->IsNull(i)) continue;
        t = times->Value(i);
      }
      if (current[g] != kNone && !Replaces(times != nullptr, t, current_time[g]))
        continue;
      if (previous[g] == kUntouched) {
        previous[g] = current[g];
        touched.push_back(g);
      }
      current[g] = i;
      current_time[g] = t;
    }
    if (touched.empty()) return arrow::Status::OK();

    // New state of the touched keys (one write).
    std::vector<int64_t> winners, winner_times;
    for (int64_t g : touched) {
      winners.push_back(current[g]);
      winner_times.push_back(current_time[g]);
    }
    std::vector<std::string> values;
    ARROW_RETURN_NOT_OK(EncodeValues(*batch, winners, winner_times.data(), &values));
    StateWriteBatch writes;
    for (size_t j = 0; j < touched.size(); ++j) {
      writes.Put(state_, keys.storage_key(touched[j]), values[j]);
    }
    ARROW_RETURN_NOT_OK(backend_->Write(writes));

    std::vector<ChangeOp> ops;
    if (arrival_first()) {
      // Only new keys: the rows come straight from this batch.
      ops.assign(touched.size(), ChangeOp::kInsert);
      ARROW_ASSIGN_OR_RAISE(auto taken, TakeRows(batch, nullptr, winners));
      ARROW_ASSIGN_OR_RAISE(auto result, MakeChangelogBatch(taken, ops, pool_));
      return out->Emit(std::move(result));
    }
    // Rows replaced by this batch come from state; rows >= n index them.
    std::vector<std::string_view> replaced;
    std::vector<int64_t> rows;
    for (int64_t g : touched) {
      if (previous[g] == kStored) {
        rows.push_back(n + static_cast<int64_t>(replaced.size()));
        replaced.push_back(stored.value(g).substr(times ? 8 : 0));
        ops.push_back(ChangeOp::kUpdateBefore);
        ops.push_back(ChangeOp::kUpdateAfter);
      } else {
        ops.push_back(ChangeOp::kInsert);
      }
      rows.push_back(current[g]);
    }
    std::shared_ptr<arrow::RecordBatch> before;
    if (!replaced.empty()) {
      ARROW_ASSIGN_OR_RAISE(auto decoded, row_codec_->Decode(replaced, pool_));
      before = arrow::RecordBatch::Make(batch->schema(), decoded->num_rows(),
                                        decoded->columns());
    }
    ARROW_ASSIGN_OR_RAISE(auto taken, TakeRows(batch, before, rows));
    ARROW_ASSIGN_OR_RAISE(auto result, MakeChangelogBatch(taken, ops, pool_));
    return out->Emit(std::move(result));
  }

  arrow::Status Snapshot(SnapshotWriter* writer) override {
    return backend_->Snapshot(writer);
  }
  arrow::Status NotifyCheckpointComplete(int64_t checkpoint_id) override {
    return backend_->NotifyCheckpointComplete(checkpoint_id);
  }

 private:
  static constexpr int64_t kNone = -1;       // no row (new key)
  static constexpr int64_t kStored = -2;     // the row in state (an earlier batch)
  static constexpr int64_t kUntouched = -3;  // (previous[]) not changed by the batch
  std::unique_ptr<KeyedStateBackend> backend_;
  int state_ = -1;
};

/// Keeps one row per key in the job's state backend: columnar in memory
/// (ColumnarStore) or in RocksDB (BackendStore); both snapshot the same
/// table, so a job restores across backends and parallelisms.
class DeduplicateOperator : public Operator {
 public:
  explicit DeduplicateOperator(const DeduplicateOptions& o) : o_(o) {}

  arrow::Status Open(OperatorContext* ctx) override {
    const bool memory = !ctx->state || ctx->state->backend == "memory";
    if (memory) {
      store_ = std::make_unique<ColumnarStore>(o_);
    } else {
      store_ = std::make_unique<BackendStore>(o_);
    }
    return store_->Open(ctx);
  }

  arrow::Status ProcessBatch(int, const std::shared_ptr<arrow::RecordBatch>& batch,
                             OperatorContext* ctx, Collector* out) override {
    return store_->Process(batch, ctx, out);
  }

  arrow::Status SnapshotState(SnapshotWriter* writer, OperatorContext* ctx) override {
    return store_->Snapshot(writer);
  }

  arrow::Status NotifyCheckpointComplete(int64_t checkpoint_id,
                                         OperatorContext* ctx) override {
    return store_->NotifyCheckpointComplete(checkpoint_id);
  }

  std::vector<StateDescriptor> state_tables() const override {
    return {{kStateName, "value"}};
  }

 private:
  const DeduplicateOptions& o_;
  std::unique_ptr<DedupBase> store_;
};

}  // namespace

void RegisterDeduplicate(OperatorRegistry* registry) {
  ARROW_CHECK_OK(registry->AddOperator(
      "deduplicate",
      [](const PlanNode& node, int, int) -> arrow::Result<std::unique_ptr<Operator>> {
        return std::make_unique<DeduplicateOperator>(
            node.options_as<DeduplicateOptions>());
      }));
}

}  // namespace sabot
