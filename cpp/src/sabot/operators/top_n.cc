#include "sabot/operators/top_n.h"

#include <arrow/builder.h>
#include <arrow/compute/api_vector.h>
#include <arrow/compute/cast.h>
#include <arrow/util/logging.h>

#include <algorithm>

#include "sabot/exec/partitioner.h"
#include "sabot/operators/changelog.h"
#include "sabot/operators/key_table.h"
#include "sabot/operators/operator_state.h"
#include "sabot/operators/retained_rows.h"

namespace sabot {

std::string TopNOptions::ToString() const {
  std::string s = "top_n(keys [";
  for (size_t i = 0; i < keys.size(); ++i) s += (i ? ", " : "") + keys[i];
  s += "], n " + std::to_string(n) + ", by " + by + (descending ? " desc" : " asc");
  if (with_rank) s += ", rank";
  return s + ")";
}

namespace {

// One member of a key's top-N set.
struct Entry {
  double value;
  int64_t row;  // id in RetainedRows; also the arrival order (ties)
  bool operator==(const Entry& o) const { return row == o.row; }
};

class TopNOperator : public Operator {
 public:
  explicit TopNOperator(const TopNOptions& o) : o_(o) {}

  arrow::Status ProcessBatch(int, const std::shared_ptr<arrow::RecordBatch>& batch,
                             OperatorContext* ctx, Collector* out) override {
    if (!key_table_) ARROW_RETURN_NOT_OK(Init(*batch->schema(), ctx));
    const int64_t n = batch->num_rows();
    if (n == 0) return arrow::Status::OK();
    std::vector<std::shared_ptr<arrow::Array>> keys;
    for (int i : key_indices_) keys.push_back(batch->column(i));
    ARROW_ASSIGN_OR_RAISE(auto ids, key_table_->Consume(keys, n));
    const uint32_t num_groups = key_table_->num_groups();
    sets_.resize(num_groups);
    ARROW_ASSIGN_OR_RAISE(
        auto cast, arrow::compute::Cast(*batch->column(by_index_), arrow::float64()));
    auto values = std::static_pointer_cast<arrow::DoubleArray>(cast);
    const int64_t base = rows_.Add(batch);
    std::vector<uint32_t> touched;
    std::vector<std::vector<Entry>> before;  // old set of touched[i]
    // Kept across batches and reset only where touched: O(rows) per batch.
    touched_index_.resize(num_groups, -1);
    auto& touched_index = touched_index_;
    const uint32_t* gid = ids->raw_values();
    const auto limit = static_cast<size_t>(o_.n);
    auto ahead = [&](const Entry& a, const Entry& b) {  // a ranks before b
      if (a.value != b.value)
        return o_.descending ? a.value > b.value : a.value < b.value;
      return a.row < b.row;
    };
    for (int64_t i = 0; i < n; ++i) {
      if (values->IsNull(i)) continue;
      const uint32_t g = gid[i];
      auto& set = sets_[g];
      Entry e{values->Value(i), base + i};
      if (set.size() >= limit && !ahead(e, set.back())) continue;
      if (touched_index[g] < 0) {
        touched_index[g] = static_cast<int32_t>(touched.size());
        touched.push_back(g);
        before.push_back(set);
      }
      set.insert(std::upper_bound(set.begin(), set.end(), e, ahead), e);
      if (set.size() > limit) set.pop_back();
    }
    for (uint32_t g : touched) touched_index[g] = -1;
    // Changes per touched key.
    std::vector<int64_t> rows, ranks;
    std::vector<ChangeOp> ops;
    auto add = [&](int64_t row, int64_t rank, ChangeOp op) {
      rows.push_back(row);
      ranks.push_back(rank);
      ops.push_back(op);
    };
    for (size_t t = 0; t < touched.size(); ++t) {
      const auto& old_set = before[t];
      const auto& new_set = sets_[touched[t]];
      if (o_.with_rank) {
        const size_t m = std::max(old_set.size(), new_set.size());
        for (size_t r = 0; r < m; ++r) {
          const int64_t rank = static_cast<int64_t>(r) + 1;
          const bool has_old = r < old_set.size(), has_new = r < new_set.size();
          if (has_old && has_new) {
            if (old_set[r].row == new_set[r].row) continue;
            add(old_set[r].row, rank, ChangeOp::kUpdateBefore);
            add(new_set[r].row, rank, ChangeOp::kUpdateAfter);
          } else if (has_new) {
            add(new_set[r].row, rank, ChangeOp::kInsert);
          } else {
            add(old_set[r].row, rank, ChangeOp::kDelete);
          }
        }
        continue;
      }
      for (const auto& e : old_set) {
        if (std::find(new_set.begin(), new_set.end(), e) == new_set.end())
          add(e.row, 0, ChangeOp::kDelete);
      }
      for (const auto& e : new_set) {
        if (std::find(old_set.begin(), old_set.end(), e) == old_set.end())
          add(e.row, 0, ChangeOp::kInsert);
      }
    }
    if (!rows.empty()) {
      ARROW_ASSIGN_OR_RAISE(auto taken, rows_.Take(rows, pool_));
      if (o_.with_rank) {
        arrow::Int64Builder b(pool_);
        ARROW_RETURN_NOT_OK(b.AppendValues(ranks));
        ARROW_ASSIGN_OR_RAISE(auto rank_array, b.Finish());
        ARROW_ASSIGN_OR_RAISE(taken,
                              taken->AddColumn(taken->num_columns(), "rank", rank_array));
      }
      ARROW_ASSIGN_OR_RAISE(auto result, MakeChangelogBatch(taken, ops, pool_));
      ARROW_RETURN_NOT_OK(out->Emit(std::move(result)));
    }
    int64_t live_rows = 0;
    for (const auto& s : sets_) live_rows += static_cast<int64_t>(s.size());
    if (rows_.num_rows() > 2 * live_rows + 4096) {
      // Compaction renumbers rows in set order; arrival order within equal
      // values is preserved because sets are sorted by (value, row).
      std::vector<int64_t*> live;
      std::vector<std::pair<int64_t, int64_t*>> by_row;
      for (auto& s : sets_) {
        for (auto& e : s) by_row.emplace_back(e.row, &e.row);
      }
      std::sort(by_row.begin(), by_row.end());
      for (auto& [row, ptr] : by_row) live.push_back(ptr);
      ARROW_RETURN_NOT_OK(rows_.Compact(live, pool_));
    }
    return arrow::Status::OK();
  }

  std::vector<StateDescriptor> state_tables() const override {
    return {{kMetaTable, "operator"}, {"top_rows", "keyed"}};
  }

  arrow::Status Open(OperatorContext* ctx) override {
    if (ctx->restore) ARROW_RETURN_NOT_OK(Restore(ctx));
    return arrow::Status::OK();
  }

  /// Keyed table "top_rows": the members of every key's set, best first: k0..,
  /// row (struct of the input columns), value (the `by` value as float64).
  arrow::Status SnapshotState(SnapshotWriter* writer, OperatorContext* ctx) override {
    InstanceMeta meta;
    meta.instance_index = ctx->instance_index;
    meta.parallelism = ctx->parallelism;
    meta.schemas["input"] = input_schema_;
    ARROW_RETURN_NOT_OK(WriteInstanceMeta(writer, meta));
    std::vector<int64_t> ids;
    std::vector<double> values;
    for (const auto& set : sets_) {
      for (const auto& e : set) {
        ids.push_back(e.row);
        values.push_back(e.value);
      }
    }
    if (ids.empty()) return arrow::Status::OK();
    ARROW_ASSIGN_OR_RAISE(auto rows, rows_.Take(ids, pool_));
    StateColumns columns;
    std::vector<std::shared_ptr<arrow::Array>> keys;
    for (int k : key_indices_) keys.push_back(rows->column(k));
    columns.AddKeys(keys);
    ARROW_ASSIGN_OR_RAISE(auto row_column, RowsAsStruct(*rows));
    columns.Add("row", row_column);
    arrow::DoubleBuilder b(pool_);
    ARROW_RETURN_NOT_OK(b.AppendValues(values));
    ARROW_ASSIGN_OR_RAISE(auto value_column, b.Finish());
    columns.Add("value", value_column);
    ARROW_ASSIGN_OR_RAISE(auto batch, columns.Finish(rows->num_rows()));
    return writer->WriteKeyed("top_rows", batch, StateKeyColumns(o_.keys.size()));
  }

 private:
  arrow::Status Restore(OperatorContext* ctx) {
    const std::string& name = ctx->operator_name;
    ARROW_ASSIGN_OR_RAISE(auto metas, ReadInstanceMeta(ctx->restore));
    auto schema = MetaSchema(metas, "input");
    if (!schema) return arrow::Status::OK();
    ARROW_RETURN_NOT_OK(Init(*schema, ctx));
    ARROW_ASSIGN_OR_RAISE(auto batch, ReadKeyedTable(ctx->restore, "top_rows", pool_));
    if (!batch) return arrow::Status::OK();
    const int64_t n = batch->num_rows();
    ARROW_ASSIGN_OR_RAISE(auto keys, StateKeys(*batch, o_.keys.size(), name));
    ARROW_ASSIGN_OR_RAISE(auto rows, StructAsRows(batch->GetColumnByName("row"), name));
    auto values =
        std::dynamic_pointer_cast<arrow::DoubleArray>(batch->GetColumnByName("value"));
    if (!values) {
      return arrow::Status::Invalid(name, ": restore: top_rows has no float64 'value'");
    }
    ARROW_ASSIGN_OR_RAISE(auto ids, key_table_->Consume(keys, n));
    sets_.resize(key_table_->num_groups());
    // Rows keep their order (best first per key), so ids keep ties in arrival order.
    const int64_t base = rows_.Add(rows);
    for (int64_t i = 0; i < n; ++i)
      sets_[ids->Value(i)].push_back(Entry{values->Value(i), base + i});
    // Only a non-keyed top-N restored from several old instances has to merge.
    const auto limit = static_cast<size_t>(o_.n);
    for (auto& set : sets_) {
      std::stable_sort(set.begin(), set.end(), [&](const Entry& a, const Entry& b) {
        return a.value != b.value
                   ? (o_.descending ? a.value > b.value : a.value < b.value)
                   : a.row < b.row;
      });
      if (set.size() > limit) set.resize(limit);
    }
    return arrow::Status::OK();
  }

  arrow::Status Init(const arrow::Schema& schema, OperatorContext* ctx) {
    input_schema_ = std::make_shared<arrow::Schema>(schema);
    pool_ = ctx->pool;
    std::vector<std::shared_ptr<arrow::DataType>> key_types;
    ARROW_ASSIGN_OR_RAISE(key_indices_,
                          ResolveKeyColumns(schema, o_.keys, ctx->operator_name));
    for (int i : key_indices_) key_types.push_back(schema.field(i)->type());
    by_index_ = schema.GetFieldIndex(o_.by);
    if (by_index_ < 0) {
      return arrow::Status::KeyError(ctx->operator_name, ": order column '", o_.by,
                                     "' is not in the input schema (",
                                     schema.ToString(false), ")");
    }
    for (const char* name : {kChangeOpColumn, o_.with_rank ? "rank" : kChangeOpColumn}) {
      if (schema.GetFieldIndex(name) >= 0) {
        return arrow::Status::Invalid(ctx->operator_name, ": the input already has a '",
                                      name, "' column");
      }
    }
    ARROW_ASSIGN_OR_RAISE(key_table_,
                          KeyTable::Make(key_types, false, ctx->exec_context, pool_));
    return arrow::Status::OK();
  }

  const TopNOptions& o_;
  arrow::MemoryPool* pool_ = nullptr;
  std::vector<int> key_indices_;
  int by_index_ = -1;
  std::shared_ptr<arrow::Schema> input_schema_;
  std::unique_ptr<KeyTable> key_table_;
  std::vector<std::vector<Entry>> sets_;  // per key, best first
  std::vector<int32_t> touched_index_;    // per key, scratch of ProcessBatch
  RetainedRows rows_;
};

}  // namespace

void RegisterTopN(OperatorRegistry* registry) {
  ARROW_CHECK_OK(registry->AddOperator(
      "top_n",
      [](const PlanNode& node, int, int) -> arrow::Result<std::unique_ptr<Operator>> {
        const auto& o = node.options_as<TopNOptions>();
        if (o.n <= 0) return arrow::Status::Invalid(node.name, ": n must be > 0");
        if (o.by.empty()) return arrow::Status::Invalid(node.name, ": no order column");
        return std::make_unique<TopNOperator>(o);
      }));
}

}  // namespace sabot
