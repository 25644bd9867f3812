#include "sabot/operators/over_aggregate.h"

#include <arrow/builder.h>
#include <arrow/compute/cast.h>
#include <arrow/util/logging.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <map>
#include <unordered_map>

#include "sabot/exec/partitioner.h"
#include "sabot/operators/changelog.h"
#include "sabot/operators/key_table.h"
#include "sabot/operators/operator_state.h"

namespace sabot {

std::string OverRowsOptions::ToString() const {
  std::string s = "over_rows(keys [";
  for (size_t i = 0; i < keys.size(); ++i) s += (i ? ", " : "") + keys[i];
  s += "], order " + order_by + ", row " + row_key + ", preceding " +
       std::to_string(preceding) + ", [";
  for (size_t i = 0; i < aggregates.size(); ++i)
    s += (i ? ", " : "") + aggregates[i].ToString();
  return s + "])";
}

namespace {

// An aggregated value or result: int64 for integer columns, float64 otherwise.
struct Num {
  int64_t i = 0;
  double d = 0;
  bool operator==(const Num& o) const { return i == o.i && d == o.d; }
};

enum class Fn { kCount, kSum, kMin, kMax, kMean };

struct Agg {
  Fn fn;
  int column = -1;  // input column; -1 for count
  bool floating = false;
};

struct RowState {
  int64_t order = 0;
  std::vector<Num> values;   // per aggregate (unused for count)
  std::vector<Num> emitted;  // the results last emitted; empty: none
};

using SortKey = std::pair<int64_t, int64_t>;  // (order value, row key)

struct Group {
  std::unordered_map<int64_t, RowState> rows;  // by row key (references stay valid)
  std::map<SortKey, RowState*> sorted;         // the rows in frame order
  // Rows removed by the current batch that had emitted results.
  std::unordered_map<int64_t, std::vector<Num>> removed;
  // The range of sort keys the current batch added, moved or removed.
  bool changed = false;
  SortKey lo, hi;

  void Mark(SortKey k) {
    if (!changed) {
      lo = hi = k;
      changed = true;
    } else {
      lo = std::min(lo, k);
      hi = std::max(hi, k);
    }
  }
};

arrow::Result<std::shared_ptr<arrow::Array>> CastTo(
    const std::shared_ptr<arrow::Array>& a, const std::shared_ptr<arrow::DataType>& t) {
  if (a->type()->Equals(*t)) return a;
  arrow::compute::CastOptions options = arrow::compute::CastOptions::Unsafe(t);
  ARROW_ASSIGN_OR_RAISE(arrow::Datum cast, arrow::compute::Cast(a, options));
  return cast.make_array();
}

class OverRowsOperator : public Operator {
 public:
  OverRowsOperator(const OverRowsOptions& o, std::vector<std::string> keys)
      : o_(o), keys_(std::move(keys)) {}

  std::vector<StateDescriptor> state_tables() const override {
    return {{kMetaTable, "operator"}, {"over_rows", "keyed"}};
  }

  arrow::Status Open(OperatorContext* ctx) override {
    pool_ = ctx->pool;
    if (ctx->restore) ARROW_RETURN_NOT_OK(Restore(ctx));
    return arrow::Status::OK();
  }

  arrow::Status ProcessBatch(int, const std::shared_ptr<arrow::RecordBatch>& batch,
                             OperatorContext* ctx, Collector* out) override {
    if (!key_table_) ARROW_RETURN_NOT_OK(Init(batch->schema(), ctx));
    const int64_t n = batch->num_rows();
    if (n == 0) return arrow::Status::OK();
    const std::string& name = ctx->operator_name;
    std::vector<std::shared_ptr<arrow::Array>> keys;
    for (int i : key_indices_) {
      if (batch->column(i)->null_count() > 0) return NullError(name, i);
      keys.push_back(batch->column(i));
    }
    ARROW_ASSIGN_OR_RAISE(auto ids, key_table_->Consume(keys, n));
    groups_.resize(key_table_->num_groups());
    ARROW_ASSIGN_OR_RAISE(auto order, IntColumn(*batch, order_index_, name));
    ARROW_ASSIGN_OR_RAISE(auto row_keys, IntColumn(*batch, row_key_index_, name));
    std::vector<std::shared_ptr<arrow::Array>> values(aggs_.size());
    for (size_t a = 0; a < aggs_.size(); ++a) {
      if (aggs_[a].column < 0) continue;
      if (batch->column(aggs_[a].column)->null_count() > 0)
        return NullError(name, aggs_[a].column);
      ARROW_ASSIGN_OR_RAISE(
          values[a], CastTo(batch->column(aggs_[a].column),
                            aggs_[a].floating ? arrow::float64() : arrow::int64()));
    }
    const int8_t* ops = nullptr;
    if (op_index_ >= 0) {
      auto op_column = batch->column(op_index_);
      if (op_column->type_id() != arrow::Type::INT8) {
        return arrow::Status::TypeError(name, ": column '_op' must be int8, got ",
                                        op_column->type()->ToString());
      }
      ops = std::static_pointer_cast<arrow::Int8Array>(op_column)->raw_values();
    }
    const uint32_t* gid = ids->raw_values();
    std::vector<uint32_t> touched;
    for (int64_t i = 0; i < n; ++i) {
      const uint32_t g = gid[i];
      Group& group = groups_[g];
      if (touched_.size() <= g) touched_.resize(g + 1, false);
      if (!touched_[g]) {
        touched_[g] = true;
        touched.push_back(g);
      }
      const int64_t rk = row_keys->Value(i);
      const int8_t op = ops ? ops[i] : 0;
      if (op == static_cast<int8_t>(ChangeOp::kInsert) ||
          op == static_cast<int8_t>(ChangeOp::kUpdateAfter)) {
        auto [it, inserted] = group.rows.try_emplace(rk);
        RowState& row = it->second;
        if (!inserted) {
          group.sorted.erase({row.order, rk});
          group.Mark({row.order, rk});
        }
        row.order = order->Value(i);
        group.sorted[{row.order, rk}] = &row;
        group.Mark({row.order, rk});
        row.values.resize(aggs_.size());
        for (size_t a = 0; a < aggs_.size(); ++a) {
          if (!values[a]) continue;
          if (aggs_[a].floating)
            row.values[a].d = static_cast<const arrow::DoubleArray&>(*values[a]).Value(i);
          else
            row.values[a].i = static_cast<const arrow::Int64Array&>(*values[a]).Value(i);
        }
        auto was = group.removed.find(rk);
        if (was != group.removed.end()) {
          row.emitted = std::move(was->second);
          group.removed.erase(was);
        }
      } else {
        auto it = group.rows.find(rk);
        if (it == group.rows.end()) continue;
        group.sorted.erase({it->second.order, rk});
        group.Mark({it->second.order, rk});
        if (!it->second.emitted.empty())
          group.removed[rk] = std::move(it->second.emitted);
        group.rows.erase(it);
      }
    }
    // Recompute the touched keys and collect the changes.
    std::vector<uint32_t> out_groups;
    std::vector<int64_t> out_rows;
    std::vector<std::vector<Num>> out_results;
    std::vector<ChangeOp> out_ops;
    auto add = [&](uint32_t g, int64_t rk, const std::vector<Num>& r, ChangeOp op) {
      out_groups.push_back(g);
      out_rows.push_back(rk);
      out_results.push_back(r);
      out_ops.push_back(op);
    };
    // Frames look back only: rows before the first changed sort key keep their
    // results, and so do rows more than `preceding` rows after the last one.
    std::deque<const RowState*> window;
    std::vector<Num> result(aggs_.size());
    const auto preceding = static_cast<size_t>(o_.preceding);
    for (uint32_t g : touched) {
      touched_[g] = false;
      Group& group = groups_[g];
      std::vector<std::pair<int64_t, std::vector<Num>>> removed(group.removed.begin(),
                                                                group.removed.end());
      group.removed.clear();
      std::sort(removed.begin(), removed.end(),
                [](const auto& a, const auto& b) { return a.first < b.first; });
      for (const auto& [rk, r] : removed) add(g, rk, r, ChangeOp::kDelete);
      if (!group.changed) continue;
      group.changed = false;
      auto it = group.sorted.lower_bound(group.lo);
      auto start = it;
      for (size_t j = 0; j < preceding && start != group.sorted.begin(); ++j) --start;
      window.clear();
      for (auto w = start; w != it; ++w) window.push_back(w->second);
      size_t past_hi = 0;
      for (; it != group.sorted.end(); ++it) {
        if (it->first > group.hi && past_hi++ >= preceding) break;
        window.push_back(it->second);
        if (window.size() > preceding + 1) window.pop_front();
        Compute(window, &result);
        RowState& row = *it->second;
        const int64_t rk = it->first.second;
        if (row.emitted.empty()) {
          add(g, rk, result, ChangeOp::kInsert);
        } else if (row.emitted != result) {
          add(g, rk, row.emitted, ChangeOp::kUpdateBefore);
          add(g, rk, result, ChangeOp::kUpdateAfter);
        } else {
          continue;
        }
        row.emitted = result;
      }
    }
    if (out_ops.empty()) return arrow::Status::OK();
    ARROW_ASSIGN_OR_RAISE(auto batch_out, Output(out_groups, out_rows, out_results));
    ARROW_ASSIGN_OR_RAISE(auto changes, MakeChangelogBatch(batch_out, out_ops, pool_));
    return out->Emit(std::move(changes));
  }

  /// Keyed table "over_rows": k0.., row_key, order, v<a> (aggregated values),
  /// e<a> (results last emitted), emitted (bool) per live row.
  arrow::Status SnapshotState(SnapshotWriter* writer, OperatorContext* ctx) override {
    InstanceMeta meta;
    meta.instance_index = ctx->instance_index;
    meta.parallelism = ctx->parallelism;
    meta.schemas["input"] = input_schema_;
    ARROW_RETURN_NOT_OK(WriteInstanceMeta(writer, meta));
    if (!key_table_) return arrow::Status::OK();
    std::vector<uint32_t> gids;
    arrow::Int64Builder row_keys(pool_), orders(pool_);
    std::vector<arrow::Int64Builder> vi(aggs_.size()), ei(aggs_.size());
    std::vector<arrow::DoubleBuilder> vd(aggs_.size()), ed(aggs_.size());
    arrow::BooleanBuilder emitted(pool_);
    for (uint32_t g = 0; g < groups_.size(); ++g) {
      for (const auto& [rk, row] : groups_[g].rows) {
        gids.push_back(g);
        ARROW_RETURN_NOT_OK(row_keys.Append(rk));
        ARROW_RETURN_NOT_OK(orders.Append(row.order));
        ARROW_RETURN_NOT_OK(emitted.Append(!row.emitted.empty()));
        for (size_t a = 0; a < aggs_.size(); ++a) {
          const Num e = row.emitted.empty() ? Num{} : row.emitted[a];
          if (aggs_[a].floating) {
            ARROW_RETURN_NOT_OK(vd[a].Append(row.values[a].d));
            ARROW_RETURN_NOT_OK(ed[a].Append(e.d));
          } else {
            ARROW_RETURN_NOT_OK(vi[a].Append(row.values[a].i));
            ARROW_RETURN_NOT_OK(ei[a].Append(e.i));
          }
        }
      }
    }
    if (gids.empty()) return arrow::Status::OK();
    StateColumns columns;
    ARROW_ASSIGN_OR_RAISE(auto keys, key_table_->KeysOf(gids));
    columns.AddKeys(keys);
    ARROW_ASSIGN_OR_RAISE(auto rk_array, row_keys.Finish());
    columns.Add("row_key", rk_array);
    ARROW_ASSIGN_OR_RAISE(auto order_array, orders.Finish());
    columns.Add("order", order_array);
    for (size_t a = 0; a < aggs_.size(); ++a) {
      std::shared_ptr<arrow::Array> v, e;
      if (aggs_[a].floating) {
        ARROW_ASSIGN_OR_RAISE(v, vd[a].Finish());
        ARROW_ASSIGN_OR_RAISE(e, ed[a].Finish());
      } else {
        ARROW_ASSIGN_OR_RAISE(v, vi[a].Finish());
        ARROW_ASSIGN_OR_RAISE(e, ei[a].Finish());
      }
      columns.Add("v" + std::to_string(a), v);
      columns.Add("e" + std::to_string(a), e);
    }
    ARROW_ASSIGN_OR_RAISE(auto emitted_array, emitted.Finish());
    columns.Add("emitted", emitted_array);
    ARROW_ASSIGN_OR_RAISE(auto state, columns.Finish(static_cast<int64_t>(gids.size())));
    return writer->WriteKeyed("over_rows", state, StateKeyColumns(keys_.size()));
  }

 private:
  static arrow::Status NullErrorFor(const std::string& name, const std::string& column) {
    return arrow::Status::Invalid(name, ": column '", column,
                                  "' has a null value (over_rows does not accept nulls "
                                  "in its keys, row key, order or aggregated columns)");
  }
  arrow::Status NullError(const std::string& name, int column) const {
    return NullErrorFor(name, input_schema_->field(column)->name());
  }

  arrow::Result<std::shared_ptr<arrow::Int64Array>> IntColumn(
      const arrow::RecordBatch& batch, int index, const std::string& name) const {
    auto column = batch.column(index);
    if (column->null_count() > 0) return NullError(name, index);
    ARROW_ASSIGN_OR_RAISE(auto cast, CastTo(column, arrow::int64()));
    return std::static_pointer_cast<arrow::Int64Array>(cast);
  }

  /// The aggregates of one frame (oldest row first, current row last).
  void Compute(const std::deque<const RowState*>& frame, std::vector<Num>* result) const {
    const auto count = static_cast<int64_t>(frame.size());
    for (size_t a = 0; a < aggs_.size(); ++a) {
      const Agg& agg = aggs_[a];
      Num r;
      if (agg.fn == Fn::kCount) {
        r.i = count;
      } else if (agg.floating) {
        double acc = frame.front()->values[a].d;
        for (size_t j = 1; j < frame.size(); ++j) {
          const double v = frame[j]->values[a].d;
          acc = agg.fn == Fn::kMin   ? std::min(acc, v)
                : agg.fn == Fn::kMax ? std::max(acc, v)
                                     : acc + v;
        }
        r.d = agg.fn == Fn::kMean ? acc / static_cast<double>(count) : acc;
      } else {
        int64_t acc = frame.front()->values[a].i;
        for (size_t j = 1; j < frame.size(); ++j) {
          const int64_t v = frame[j]->values[a].i;
          acc = agg.fn == Fn::kMin   ? std::min(acc, v)
                : agg.fn == Fn::kMax ? std::max(acc, v)
                                     : acc + v;
        }
        if (agg.fn == Fn::kMean) {
          // Rounded down, as q6's BIGINT average (sum div count).
          int64_t q = acc / count;
          if ((acc % count != 0) && ((acc < 0) != (count < 0))) --q;
          acc = q;
        }
        r.i = acc;
      }
      (*result)[a] = r;
    }
  }

  arrow::Result<std::shared_ptr<arrow::RecordBatch>> Output(
      const std::vector<uint32_t>& groups, const std::vector<int64_t>& rows,
      const std::vector<std::vector<Num>>& results) {
    ARROW_ASSIGN_OR_RAISE(auto keys, key_table_->KeysOf(groups));
    arrow::ArrayVector columns = keys;
    arrow::Int64Builder rk(pool_);
    ARROW_RETURN_NOT_OK(rk.AppendValues(rows));
    ARROW_ASSIGN_OR_RAISE(auto rk_array, rk.Finish());
    columns.push_back(rk_array);
    for (size_t a = 0; a < aggs_.size(); ++a) {
      std::shared_ptr<arrow::Array> column;
      if (aggs_[a].floating && aggs_[a].fn != Fn::kCount) {
        arrow::DoubleBuilder b(pool_);
        ARROW_RETURN_NOT_OK(b.Reserve(static_cast<int64_t>(results.size())));
        for (const auto& r : results) b.UnsafeAppend(r[a].d);
        ARROW_ASSIGN_OR_RAISE(column, b.Finish());
      } else {
        arrow::Int64Builder b(pool_);
        ARROW_RETURN_NOT_OK(b.Reserve(static_cast<int64_t>(results.size())));
        for (const auto& r : results) b.UnsafeAppend(r[a].i);
        ARROW_ASSIGN_OR_RAISE(column, b.Finish());
      }
      columns.push_back(column);
    }
    return arrow::RecordBatch::Make(output_schema_, static_cast<int64_t>(rows.size()),
                                    columns);
  }

  arrow::Status Init(const std::shared_ptr<arrow::Schema>& schema, OperatorContext* ctx) {
    const std::string& name = ctx->operator_name;
    input_schema_ = schema;
    pool_ = ctx->pool;
    ARROW_ASSIGN_OR_RAISE(key_indices_, ResolveKeyColumns(*schema, keys_, name));
    auto find = [&](const std::string& column, const char* what) -> arrow::Result<int> {
      const int i = schema->GetFieldIndex(column);
      if (i < 0) {
        return arrow::Status::KeyError(name, ": ", what, " column '", column,
                                       "' is not in the input schema (",
                                       schema->ToString(false), ")");
      }
      return i;
    };
    ARROW_ASSIGN_OR_RAISE(order_index_, find(o_.order_by, "order"));
    ARROW_ASSIGN_OR_RAISE(row_key_index_, find(o_.row_key, "row key"));
    for (int i : {order_index_, row_key_index_}) {
      const auto& t = *schema->field(i)->type();
      if (!arrow::is_integer(t.id()) && !arrow::is_temporal(t.id())) {
        return arrow::Status::TypeError(name, ": column '", schema->field(i)->name(),
                                        "' must be an integer or temporal column, got ",
                                        t.ToString());
      }
    }
    op_index_ = schema->GetFieldIndex(kChangeOpColumn);
    arrow::FieldVector fields;
    std::vector<std::shared_ptr<arrow::DataType>> key_types;
    for (int i : key_indices_) {
      key_types.push_back(schema->field(i)->type());
      fields.push_back(schema->field(i));
    }
    fields.push_back(arrow::field(o_.row_key, arrow::int64()));
    aggs_.clear();
    for (const auto& spec : o_.aggregates) {
      Agg agg;
      const std::string& f = spec.function;
      if (f == "count")
        agg.fn = Fn::kCount;
      else if (f == "sum")
        agg.fn = Fn::kSum;
      else if (f == "min")
        agg.fn = Fn::kMin;
      else if (f == "max")
        agg.fn = Fn::kMax;
      else if (f == "mean" || f == "avg")
        agg.fn = Fn::kMean;
      else
        return arrow::Status::NotImplemented(name, ": aggregate '", f,
                                             "' (over_rows supports count, sum, min, "
                                             "max, mean)");
      if (agg.fn != Fn::kCount || !spec.column.empty()) {
        ARROW_ASSIGN_OR_RAISE(agg.column, find(spec.column, "aggregated"));
        const auto& t = *schema->field(agg.column)->type();
        if (!arrow::is_integer(t.id()) && !arrow::is_floating(t.id())) {
          return arrow::Status::TypeError(name, ": aggregated column '", spec.column,
                                          "' must be numeric, got ", t.ToString());
        }
        agg.floating = arrow::is_floating(t.id());
      }
      if (agg.fn == Fn::kCount) agg.column = -1;
      fields.push_back(arrow::field(spec.output, agg.floating && agg.fn != Fn::kCount
                                                     ? arrow::float64()
                                                     : arrow::int64()));
      aggs_.push_back(agg);
    }
    output_schema_ = arrow::schema(fields);
    ARROW_ASSIGN_OR_RAISE(
        key_table_,
        KeyTable::Make(key_types, true,
                       ctx->exec_context ? ctx->exec_context
                                         : arrow::compute::default_exec_context(),
                       pool_));
    return arrow::Status::OK();
  }

  arrow::Status Restore(OperatorContext* ctx) {
    const std::string& name = ctx->operator_name;
    ARROW_ASSIGN_OR_RAISE(auto metas, ReadInstanceMeta(ctx->restore));
    auto schema = MetaSchema(metas, "input");
    if (!schema) return arrow::Status::OK();
    ARROW_RETURN_NOT_OK(Init(schema, ctx));
    ARROW_ASSIGN_OR_RAISE(auto state, ReadKeyedTable(ctx->restore, "over_rows", pool_));
    if (!state) return arrow::Status::OK();
    const int64_t n = state->num_rows();
    ARROW_ASSIGN_OR_RAISE(auto keys, StateKeys(*state, keys_.size(), name));
    ARROW_ASSIGN_OR_RAISE(auto ids, key_table_->Consume(keys, n));
    groups_.resize(key_table_->num_groups());
    ARROW_ASSIGN_OR_RAISE(auto row_keys, StateInt64(*state, "row_key", name));
    ARROW_ASSIGN_OR_RAISE(auto orders, StateInt64(*state, "order", name));
    ARROW_ASSIGN_OR_RAISE(auto emitted, StateBool(*state, "emitted", name));
    std::vector<std::shared_ptr<arrow::Array>> v(aggs_.size()), e(aggs_.size());
    for (size_t a = 0; a < aggs_.size(); ++a) {
      v[a] = state->GetColumnByName("v" + std::to_string(a));
      e[a] = state->GetColumnByName("e" + std::to_string(a));
      const auto type = aggs_[a].floating ? arrow::float64() : arrow::int64();
      if (!v[a] || !e[a] || !v[a]->type()->Equals(*type) ||
          !e[a]->type()->Equals(*type)) {
        return arrow::Status::Invalid(name, ": restore: over_rows state has no ",
                                      type->ToString(), " columns v", a, "/e", a);
      }
    }
    for (int64_t i = 0; i < n; ++i) {
      Group& group = groups_[ids->Value(i)];
      RowState& row = group.rows[row_keys->Value(i)];
      row.order = orders->Value(i);
      group.sorted[{row.order, row_keys->Value(i)}] = &row;
      row.values.resize(aggs_.size());
      if (emitted->Value(i)) row.emitted.resize(aggs_.size());
      for (size_t a = 0; a < aggs_.size(); ++a) {
        if (aggs_[a].floating) {
          row.values[a].d = static_cast<const arrow::DoubleArray&>(*v[a]).Value(i);
          if (emitted->Value(i))
            row.emitted[a].d = static_cast<const arrow::DoubleArray&>(*e[a]).Value(i);
        } else {
          row.values[a].i = static_cast<const arrow::Int64Array&>(*v[a]).Value(i);
          if (emitted->Value(i))
            row.emitted[a].i = static_cast<const arrow::Int64Array&>(*e[a]).Value(i);
        }
      }
    }
    return arrow::Status::OK();
  }

  const OverRowsOptions& o_;
  std::vector<std::string> keys_;
  arrow::MemoryPool* pool_ = arrow::default_memory_pool();
  std::shared_ptr<arrow::Schema> input_schema_;
  std::shared_ptr<arrow::Schema> output_schema_;
  std::vector<int> key_indices_;
  int order_index_ = -1;
  int row_key_index_ = -1;
  int op_index_ = -1;
  std::vector<Agg> aggs_;
  std::unique_ptr<KeyTable> key_table_;
  std::vector<Group> groups_;
  std::vector<bool> touched_;  // per group, scratch of ProcessBatch
};

}  // namespace

void RegisterOverAggregate(OperatorRegistry* registry) {
  ARROW_CHECK_OK(registry->AddOperator(
      "over_rows",
      [](const PlanNode& node, int,
         int parallelism) -> arrow::Result<std::unique_ptr<Operator>> {
        const auto& o = node.options_as<OverRowsOptions>();
        std::vector<std::string> keys = o.keys;
        if (keys.empty() && !node.inputs.empty() &&
            node.inputs[0].partitioning == Partitioning::kHash)
          keys = node.inputs[0].keys;
        if (keys.empty() && parallelism > 1) {
          return arrow::Status::Invalid(node.name,
                                        ": over_rows without key_by needs parallelism 1");
        }
        if (o.preceding < 0) return arrow::Status::Invalid(node.name, ": preceding < 0");
        if (o.order_by.empty() || o.row_key.empty()) {
          return arrow::Status::Invalid(node.name,
                                        ": needs an order column and a row key");
        }
        if (o.aggregates.empty())
          return arrow::Status::Invalid(node.name, ": no aggregates");
        return std::make_unique<OverRowsOperator>(o, std::move(keys));
      }));
}

}  // namespace sabot
