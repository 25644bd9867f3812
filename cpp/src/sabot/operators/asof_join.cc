// The ASOF join and the temporal (versioned table) join: one operator with two
// option sets. Right rows are kept per key (group ids from one Grouper shared
// by both sides) in event-time order; left rows wait in a min-heap on their ts
// until the watermark reaches it, then each probes its key's versions with a
// binary search, and the matches are gathered with one Take per (left batch,
// right batch) pair.
#include <arrow/compute/api_vector.h>
#include <arrow/compute/row/grouper.h>

#include <algorithm>
#include <map>
#include <numeric>

#include "sabot/exec/operator.h"
#include "sabot/exec/stream_element.h"
#include "sabot/operators/event_time.h"
#include "sabot/operators/event_time_join.h"
#include "sabot/operators/join_output.h"
#include "sabot/operators/operator_state.h"

namespace sabot {

namespace cp = arrow::compute;

std::string AsofJoinOptions::ToString() const {
  return std::string("asof_join(") + JoinTypeName(type) + ", " +
         JoinKeysToString(left_keys, right_keys) + ", right." + right_time + " <= left." +
         left_time +
         (tolerance_ms > 0 ? " within " + std::to_string(tolerance_ms) + " ms" : "") +
         ")";
}

std::string TemporalJoinOptions::ToString() const {
  return std::string("temporal_join(") + JoinTypeName(type) + ", " +
         JoinKeysToString(left_keys, right_keys) + ", version " + right_time +
         " as of left." + left_time +
         (deleted_column.empty() ? "" : ", deleted " + deleted_column) + ")";
}

namespace {

/// The settings both option sets share.
struct AsofSettings {
  std::vector<std::string> keys[2];
  std::string time[2];
  std::string int_unit;
  int64_t tolerance_ms = 0;    // asof only; 0: unlimited
  std::string deleted_column;  // temporal only
  JoinType type = JoinType::kInner;
};

/// Batches held in state, by slot, released when their last row is dropped.
struct BatchStore {
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  std::vector<int64_t> live_rows;
  std::vector<uint32_t> free_slots;

  uint32_t Add(std::shared_ptr<arrow::RecordBatch> batch, int64_t rows) {
    uint32_t slot;
    if (!free_slots.empty()) {
      slot = free_slots.back();
      free_slots.pop_back();
      batches[slot] = std::move(batch);
      live_rows[slot] = rows;
    } else {
      slot = static_cast<uint32_t>(batches.size());
      batches.push_back(std::move(batch));
      live_rows.push_back(rows);
    }
    if (rows == 0) Release(slot, 0);
    return slot;
  }
  void Release(uint32_t slot, int64_t rows = 1) {
    live_rows[slot] -= rows;
    if (live_rows[slot] <= 0) {
      batches[slot].reset();
      free_slots.push_back(slot);
    }
  }
};

/// A right row: one version of its key.
struct Version {
  int64_t ts;
  uint32_t slot;
  uint32_t row;
  bool deleted;
};

/// A left row waiting for the watermark to reach its ts.
struct PendingRow {
  int64_t ts;
  uint64_t seq;  // arrival order, for a deterministic order among equal ts
  uint32_t group;
  uint32_t slot;
  uint32_t row;
  bool null_key;
  bool operator>(const PendingRow& o) const {
    return ts != o.ts ? ts > o.ts : seq > o.seq;
  }
};

class AsofJoinOperator : public Operator {
 public:
  explicit AsofJoinOperator(AsofSettings s) : s_(std::move(s)) {}

  arrow::Status ProcessBatch(int input, const std::shared_ptr<arrow::RecordBatch>& batch,
                             OperatorContext* ctx, Collector* out) override {
    if (input < 0 || input > 1) {
      return arrow::Status::Invalid(ctx->operator_name,
                                    ": a join has 2 inputs, got input ", input);
    }
    ARROW_RETURN_NOT_OK(InitSide(input, batch, ctx));
    const int64_t n = batch->num_rows();
    if (n == 0) return arrow::Status::OK();
    const auto& time_column = s_.time[input];
    auto times_or =
        EventTimeMillis(batch->column(sides_[input].time_index), s_.int_unit, ctx->pool);
    if (!times_or.ok()) {
      return times_or.status().WithMessage(ctx->operator_name, ": column '", time_column,
                                           "': ", times_or.status().message());
    }
    auto times = *times_or;
    if (times->null_count() > 0) {
      return arrow::Status::Invalid(ctx->operator_name, ": null event time in column '",
                                    time_column,
                                    "'; assign watermarks first (they route such rows to "
                                    "the \"invalid_time\" side output)");
    }
    std::vector<cp::ExecValue> values;
    for (int k : sides_[input].key_indices) values.emplace_back(*batch->column_data(k));
    cp::ExecSpan span(values, n);
    ARROW_ASSIGN_OR_RAISE(arrow::Datum ids_datum, grouper_->Consume(span));
    auto ids = std::static_pointer_cast<arrow::UInt32Array>(ids_datum.make_array());
    if (versions_.size() < grouper_->num_groups())
      versions_.resize(grouper_->num_groups());
    const uint32_t* gid = ids->raw_values();
    const int64_t* t = times->raw_values();
    return input == 0 ? AddLeft(batch, gid, t, out) : AddRight(batch, gid, t);
  }

  arrow::Status OnWatermark(int64_t wm, OperatorContext* ctx, Collector* out) override {
    // Left rows need the output schema; until the right side's first batch they
    // wait (at the end, a right side that sent nothing leaves nothing to join).
    watermark_ = wm;
    if (output_schema_) {
      std::vector<JoinPair> pairs;
      std::vector<uint32_t> slots;
      while (!pending_.empty() && pending_.front().ts <= wm) {
        std::pop_heap(pending_.begin(), pending_.end(), std::greater<>());
        const PendingRow p = pending_.back();
        pending_.pop_back();
        const Version* v = p.null_key ? nullptr : Probe(p.group, p.ts);
        const auto* lb = left_.batches[p.slot].get();
        if (v != nullptr) {
          pairs.push_back(JoinPair{lb, p.row, right_.batches[v->slot].get(), v->row});
        } else if (s_.type == JoinType::kLeft) {
          pairs.push_back(JoinPair{lb, p.row, nullptr, 0});
        }
        slots.push_back(p.slot);
      }
      ARROW_RETURN_NOT_OK(EmitPairs(&pairs, ctx, out, /*late=*/false));
      for (uint32_t slot : slots) left_.Release(slot);
    }
    Cleanup(wm);
    return out->EmitWatermark(wm);
  }

  arrow::Status Close(OperatorContext* ctx, Collector* out) override {
    if (!late_.empty() && ctx->side_rows_unconsumed) {
      // The right input never sent a batch, so no output schema could be built.
      *ctx->side_rows_unconsumed += static_cast<int64_t>(late_.size());
      late_.clear();
      late_batches_.clear();
    }
    return arrow::Status::OK();
  }

  /// Keyed tables "left_pending": left rows waiting for the watermark: k0..,
  /// row (struct of the left columns), ts, seq (arrival order); "right_versions":
  /// the right rows kept per key: k0.., row, ts, deleted, position (order in
  /// the key's version list); "left_late": late left rows waiting for the
  /// output schema; "meta": watermark, next seq, both input schemas.
  std::vector<StateDescriptor> state_tables() const override {
    return {{kMetaTable, "operator"},
            {"left_pending", "keyed"},
            {"right_versions", "keyed"},
            {"left_late", "keyed"}};
  }

  arrow::Status Open(OperatorContext* ctx) override {
    if (ctx->restore) ARROW_RETURN_NOT_OK(Restore(ctx));
    return arrow::Status::OK();
  }

  arrow::Status SnapshotState(SnapshotWriter* writer, OperatorContext* ctx) override {
    InstanceMeta meta;
    meta.instance_index = ctx->instance_index;
    meta.parallelism = ctx->parallelism;
    meta.values["watermark"] = watermark_;
    meta.values["seq"] = static_cast<int64_t>(seq_);
    meta.schemas["left"] = known_[0] ? sides_[0].schema : nullptr;
    meta.schemas["right"] = known_[1] ? sides_[1].schema : nullptr;
    ARROW_RETURN_NOT_OK(WriteInstanceMeta(writer, meta));
    // Pending left rows, one Take per stored batch.
    {
      std::vector<std::vector<const PendingRow*>> by_slot(left_.batches.size());
      for (const auto& p : pending_) by_slot[p.slot].push_back(&p);
      for (size_t slot = 0; slot < by_slot.size(); ++slot) {
        if (by_slot[slot].empty()) continue;
        std::vector<int64_t> rows, ts, seq;
        for (const auto* p : by_slot[slot]) {
          rows.push_back(p->row);
          ts.push_back(p->ts);
          seq.push_back(static_cast<int64_t>(p->seq));
        }
        ARROW_ASSIGN_OR_RAISE(auto taken, TakeRows(left_.batches[slot], rows, ctx));
        StateColumns columns;
        ARROW_RETURN_NOT_OK(AddRowColumns(&columns, 0, taken));
        ARROW_RETURN_NOT_OK(AddInt64(&columns, "ts", ts, ctx));
        ARROW_RETURN_NOT_OK(AddInt64(&columns, "seq", seq, ctx));
        ARROW_ASSIGN_OR_RAISE(auto state, columns.Finish(taken->num_rows()));
        ARROW_RETURN_NOT_OK(writer->WriteKeyed("left_pending", state, KeyColumnNames()));
      }
    }
    // Right versions, one Take per stored batch; `position` keeps each key's order.
    {
      struct Ref {
        const Version* v;
        int64_t position;
      };
      std::vector<std::vector<Ref>> by_slot(right_.batches.size());
      for (const auto& list : versions_) {
        for (size_t i = 0; i < list.size(); ++i)
          by_slot[list[i].slot].push_back(Ref{&list[i], static_cast<int64_t>(i)});
      }
      for (size_t slot = 0; slot < by_slot.size(); ++slot) {
        if (by_slot[slot].empty()) continue;
        std::vector<int64_t> rows, ts, position;
        arrow::BooleanBuilder deleted(ctx->pool);
        for (const auto& r : by_slot[slot]) {
          rows.push_back(r.v->row);
          ts.push_back(r.v->ts);
          position.push_back(r.position);
          ARROW_RETURN_NOT_OK(deleted.Append(r.v->deleted));
        }
        ARROW_ASSIGN_OR_RAISE(auto taken, TakeRows(right_.batches[slot], rows, ctx));
        StateColumns columns;
        ARROW_RETURN_NOT_OK(AddRowColumns(&columns, 1, taken));
        ARROW_RETURN_NOT_OK(AddInt64(&columns, "ts", ts, ctx));
        ARROW_ASSIGN_OR_RAISE(auto deleted_array, deleted.Finish());
        columns.Add("deleted", deleted_array);
        ARROW_RETURN_NOT_OK(AddInt64(&columns, "position", position, ctx));
        ARROW_ASSIGN_OR_RAISE(auto state, columns.Finish(taken->num_rows()));
        ARROW_RETURN_NOT_OK(
            writer->WriteKeyed("right_versions", state, KeyColumnNames()));
      }
    }
    // Late left rows waiting for the output schema.
    for (const auto& batch : late_batches_) {
      std::vector<int64_t> rows;
      for (const auto& p : late_) {
        if (p.left == batch.get()) rows.push_back(p.left_row);
      }
      if (rows.empty()) continue;
      ARROW_ASSIGN_OR_RAISE(auto taken, TakeRows(batch, rows, ctx));
      StateColumns columns;
      ARROW_RETURN_NOT_OK(AddRowColumns(&columns, 0, taken));
      ARROW_ASSIGN_OR_RAISE(auto state, columns.Finish(taken->num_rows()));
      ARROW_RETURN_NOT_OK(writer->WriteKeyed("left_late", state, KeyColumnNames()));
    }
    return arrow::Status::OK();
  }

 private:
  void PushPending(const PendingRow& row) {
    pending_.push_back(row);
    std::push_heap(pending_.begin(), pending_.end(), std::greater<>());
  }

  std::vector<std::string> KeyColumnNames() const {
    return StateKeyColumns(s_.keys[0].size());
  }

  static arrow::Result<std::shared_ptr<arrow::RecordBatch>> TakeRows(
      const std::shared_ptr<arrow::RecordBatch>& batch, const std::vector<int64_t>& rows,
      OperatorContext* ctx) {
    arrow::Int64Builder b(ctx->pool);
    ARROW_RETURN_NOT_OK(b.AppendValues(rows));
    ARROW_ASSIGN_OR_RAISE(auto indices, b.Finish());
    ARROW_ASSIGN_OR_RAISE(
        auto taken,
        cp::Take(batch, indices, cp::TakeOptions::NoBoundsCheck(), ctx->exec_context));
    return taken.record_batch();
  }

  arrow::Status AddRowColumns(StateColumns* columns, int side,
                              const std::shared_ptr<arrow::RecordBatch>& rows) {
    std::vector<std::shared_ptr<arrow::Array>> keys;
    for (int k : sides_[side].key_indices) keys.push_back(rows->column(k));
    columns->AddKeys(keys);
    ARROW_ASSIGN_OR_RAISE(auto row_column, RowsAsStruct(*rows));
    columns->Add("row", row_column);
    return arrow::Status::OK();
  }

  static arrow::Status AddInt64(StateColumns* columns, const char* name,
                                const std::vector<int64_t>& values,
                                OperatorContext* ctx) {
    arrow::Int64Builder b(ctx->pool);
    ARROW_RETURN_NOT_OK(b.AppendValues(values));
    ARROW_ASSIGN_OR_RAISE(auto a, b.Finish());
    columns->Add(name, std::move(a));
    return arrow::Status::OK();
  }

  // Group ids of `rows` of `side` in the grouper both sides share.
  arrow::Result<std::shared_ptr<arrow::UInt32Array>> GroupIds(
      int side, const arrow::RecordBatch& rows) {
    std::vector<cp::ExecValue> values;
    for (int k : sides_[side].key_indices) values.emplace_back(*rows.column_data(k));
    cp::ExecSpan span(values, rows.num_rows());
    ARROW_ASSIGN_OR_RAISE(arrow::Datum ids_datum, grouper_->Consume(span));
    if (versions_.size() < grouper_->num_groups())
      versions_.resize(grouper_->num_groups());
    return std::static_pointer_cast<arrow::UInt32Array>(ids_datum.make_array());
  }

  arrow::Status Restore(OperatorContext* ctx) {
    const std::string& name = ctx->operator_name;
    ARROW_ASSIGN_OR_RAISE(auto metas, ReadInstanceMeta(ctx->restore));
    watermark_ = MinMetaValue(metas, "watermark", kMinWatermark);
    for (const auto& m : metas) {
      auto it = m.values.find("seq");
      if (it != m.values.end()) seq_ = std::max(seq_, static_cast<uint64_t>(it->second));
    }
    for (int side = 0; side < 2; ++side) {
      auto schema = MetaSchema(metas, side == 0 ? "left" : "right");
      if (schema) ARROW_RETURN_NOT_OK(InitSide(side, schema, ctx));
    }
    if (known_[0]) {
      ARROW_ASSIGN_OR_RAISE(auto batch,
                            ReadKeyedTable(ctx->restore, "left_pending", ctx->pool));
      if (batch) {
        ARROW_ASSIGN_OR_RAISE(auto rows,
                              StructAsRows(batch->GetColumnByName("row"), name));
        ARROW_ASSIGN_OR_RAISE(auto ts, StateInt64(*batch, "ts", name));
        ARROW_ASSIGN_OR_RAISE(auto seq, StateInt64(*batch, "seq", name));
        ARROW_ASSIGN_OR_RAISE(auto ids, GroupIds(0, *rows));
        const uint32_t slot = left_.Add(rows, rows->num_rows());
        for (int64_t i = 0; i < rows->num_rows(); ++i) {
          PushPending(PendingRow{ts->Value(i), static_cast<uint64_t>(seq->Value(i)),
                                 ids->Value(i), slot, static_cast<uint32_t>(i),
                                 HasNullKey(*rows, sides_[0].key_indices, i)});
        }
      }
      ARROW_ASSIGN_OR_RAISE(auto late,
                            ReadKeyedTable(ctx->restore, "left_late", ctx->pool));
      if (late) {
        ARROW_ASSIGN_OR_RAISE(auto rows,
                              StructAsRows(late->GetColumnByName("row"), name));
        for (int64_t i = 0; i < rows->num_rows(); ++i)
          late_.push_back(JoinPair{rows.get(), i, nullptr, 0});
        late_batches_.push_back(rows);
      }
    }
    if (known_[1]) {
      ARROW_ASSIGN_OR_RAISE(auto batch,
                            ReadKeyedTable(ctx->restore, "right_versions", ctx->pool));
      if (batch) {
        ARROW_ASSIGN_OR_RAISE(auto rows,
                              StructAsRows(batch->GetColumnByName("row"), name));
        ARROW_ASSIGN_OR_RAISE(auto ts, StateInt64(*batch, "ts", name));
        ARROW_ASSIGN_OR_RAISE(auto deleted, StateBool(*batch, "deleted", name));
        ARROW_ASSIGN_OR_RAISE(auto position, StateInt64(*batch, "position", name));
        ARROW_ASSIGN_OR_RAISE(auto ids, GroupIds(1, *rows));
        const int64_t n = rows->num_rows();
        const uint32_t slot = right_.Add(rows, n);
        std::vector<int64_t> order(n);
        std::iota(order.begin(), order.end(), 0);
        std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
          return ids->Value(a) != ids->Value(b) ? ids->Value(a) < ids->Value(b)
                                                : position->Value(a) < position->Value(b);
        });
        for (int64_t i : order) {
          const uint32_t g = ids->Value(i);
          versions_[g].push_back(
              Version{ts->Value(i), slot, static_cast<uint32_t>(i), deleted->Value(i)});
          AddExpiry(ts->Value(i), g);
          if (s_.tolerance_ms > 0) AddExpiry(ts->Value(i) + s_.tolerance_ms, g);
        }
      }
    }
    return arrow::Status::OK();
  }

  arrow::Status AddLeft(const std::shared_ptr<arrow::RecordBatch>& batch,
                        const uint32_t* gid, const int64_t* t, Collector* out) {
    const int64_t n = batch->num_rows();
    std::vector<int64_t> late_rows;
    int64_t kept = 0;
    for (int64_t i = 0; i < n; ++i) kept += IsLate(t[i]) ? 0 : 1;
    const uint32_t slot = left_.Add(batch, kept);
    for (int64_t i = 0; i < n; ++i) {
      if (IsLate(t[i])) {
        late_rows.push_back(i);
        continue;
      }
      PushPending(PendingRow{t[i], seq_++, gid[i], slot, static_cast<uint32_t>(i),
                             HasNullKey(*batch, sides_[0].key_indices, i)});
    }
    if (late_rows.empty()) return arrow::Status::OK();
    for (int64_t i : late_rows) late_.push_back(JoinPair{batch.get(), i, nullptr, 0});
    late_batches_.push_back(batch);  // keeps the rows alive until flushed
    return FlushLate(out);
  }

  arrow::Status AddRight(const std::shared_ptr<arrow::RecordBatch>& batch,
                         const uint32_t* gid, const int64_t* t) {
    const int64_t n = batch->num_rows();
    std::shared_ptr<arrow::BooleanArray> deleted;
    if (deleted_index_ >= 0) {
      deleted =
          std::dynamic_pointer_cast<arrow::BooleanArray>(batch->column(deleted_index_));
    }
    std::vector<uint8_t> keep(n);
    int64_t kept = 0;
    for (int64_t i = 0; i < n; ++i) {
      keep[i] = !HasNullKey(*batch, sides_[1].key_indices, i);
      kept += keep[i];
    }
    const uint32_t slot = right_.Add(batch, kept);
    for (int64_t i = 0; i < n; ++i) {
      if (!keep[i]) continue;
      const bool del = deleted && deleted->IsValid(i) && deleted->Value(i);
      auto& list = versions_[gid[i]];
      const Version v{t[i], slot, static_cast<uint32_t>(i), del};
      if (list.empty() || list.back().ts <= v.ts) {
        list.push_back(v);
      } else {
        // Out of order: after every version with ts <= v.ts (ties: last arrived wins).
        auto at =
            std::upper_bound(list.begin(), list.end(), v.ts,
                             [](int64_t ts, const Version& x) { return ts < x.ts; });
        list.insert(at, v);
      }
      // Older versions of this key can go once the watermark reaches v.ts; with
      // a tolerance, v itself once it reaches v.ts + tolerance.
      AddExpiry(t[i], gid[i]);
      if (s_.tolerance_ms > 0) AddExpiry(t[i] + s_.tolerance_ms, gid[i]);
    }
    return arrow::Status::OK();
  }

  void AddExpiry(int64_t at, uint32_t group) {
    auto& groups = expiring_[at];
    if (groups.empty() || groups.back() != group) groups.push_back(group);
  }

  bool IsLate(int64_t ts) const {
    return watermark_ != kMinWatermark && ts <= watermark_;
  }

  // The version a left row at `ts` of `group` joins, or nullptr.
  const Version* Probe(uint32_t group, int64_t ts) const {
    const auto& list = versions_[group];
    auto it = std::upper_bound(list.begin(), list.end(), ts,
                               [](int64_t t, const Version& x) { return t < x.ts; });
    if (it == list.begin()) return nullptr;
    const Version& v = *(it - 1);
    if (v.deleted) return nullptr;
    if (s_.tolerance_ms > 0 && ts - v.ts > s_.tolerance_ms) return nullptr;
    return &v;
  }

  // Every left row still to come has ts > wm, so per key only the newest version
  // with ts <= wm and the later ones can still be an answer (with a tolerance,
  // that newest one only while its ts + tolerance > wm).
  void Cleanup(int64_t wm) {
    std::vector<uint32_t> groups;
    while (!expiring_.empty() && expiring_.begin()->first <= wm) {
      auto& g = expiring_.begin()->second;
      groups.insert(groups.end(), g.begin(), g.end());
      expiring_.erase(expiring_.begin());
    }
    std::sort(groups.begin(), groups.end());
    groups.erase(std::unique(groups.begin(), groups.end()), groups.end());
    for (uint32_t g : groups) {
      auto& list = versions_[g];
      auto it = std::upper_bound(list.begin(), list.end(), wm,
                                 [](int64_t t, const Version& x) { return t < x.ts; });
      size_t drop = static_cast<size_t>(it - list.begin());
      if (drop > 0) {
        --drop;  // the newest version <= wm stays ...
        if (s_.tolerance_ms > 0 && list[drop].ts + s_.tolerance_ms <= wm) ++drop;
      }
      if (drop == 0) continue;
      for (size_t i = 0; i < drop; ++i) right_.Release(list[i].slot);
      list.erase(list.begin(), list.begin() + static_cast<std::ptrdiff_t>(drop));
      if (list.empty()) list.shrink_to_fit();
    }
  }

  arrow::Status InitSide(int input, const std::shared_ptr<arrow::RecordBatch>& batch,
                         OperatorContext* ctx) {
    return InitSide(input, batch->schema(), ctx);
  }

  arrow::Status InitSide(int input, const std::shared_ptr<arrow::Schema>& schema,
                         OperatorContext* ctx) {
    const char* side = input == 0 ? "left" : "right";
    if (known_[input]) {
      if (!schema->Equals(*sides_[input].schema, false)) {
        return arrow::Status::TypeError(
            ctx->operator_name, ": ", side, " input changed schema from ",
            sides_[input].schema->ToString(false), " to ", schema->ToString(false));
      }
      return arrow::Status::OK();
    }
    exec_ = ctx->exec_context ? ctx->exec_context : cp::default_exec_context();
    ARROW_ASSIGN_OR_RAISE(sides_[input],
                          ResolveJoinSide(schema, s_.keys[input], s_.time[input],
                                          ctx->operator_name, side));
    if (input == 1 && !s_.deleted_column.empty()) {
      deleted_index_ = schema->GetFieldIndex(s_.deleted_column);
      if (deleted_index_ < 0) {
        return arrow::Status::KeyError(
            ctx->operator_name, ": deleted column '", s_.deleted_column,
            "' is not in the right input schema (", schema->ToString(false), ")");
      }
      const auto& type = schema->field(deleted_index_)->type();
      if (type->id() != arrow::Type::BOOL) {
        return arrow::Status::TypeError(ctx->operator_name, ": deleted column '",
                                        s_.deleted_column, "' must be boolean, got ",
                                        type->ToString());
      }
    }
    known_[input] = true;
    if (known_[1 - input]) {
      ARROW_RETURN_NOT_OK(CheckJoinKeyTypes(sides_[0], sides_[1], s_.keys[0], s_.keys[1],
                                            ctx->operator_name));
      ARROW_ASSIGN_OR_RAISE(
          output_schema_,
          JoinOutputSchema(*sides_[0].schema, *sides_[1].schema, {}, ctx->operator_name));
    } else {
      std::vector<arrow::TypeHolder> types(sides_[input].key_types.begin(),
                                           sides_[input].key_types.end());
      ARROW_ASSIGN_OR_RAISE(grouper_, cp::Grouper::Make(types, exec_));
    }
    return arrow::Status::OK();
  }

  arrow::Status EmitPairs(std::vector<JoinPair>* pairs, OperatorContext* ctx,
                          Collector* out, bool late) {
    if (pairs->empty()) return arrow::Status::OK();
    if (!output_schema_) {
      return arrow::Status::Invalid(
          ctx->operator_name, ": internal: output before both input schemas are known");
    }
    const int64_t n = static_cast<int64_t>(pairs->size());
    ARROW_ASSIGN_OR_RAISE(auto columns, GatherJoinColumns(pairs, *sides_[0].schema,
                                                          *sides_[1].schema, exec_));
    pairs->clear();
    auto batch = arrow::RecordBatch::Make(output_schema_, n, std::move(columns));
    return late ? out->EmitSide("late", std::move(batch)) : out->Emit(std::move(batch));
  }

  arrow::Status FlushLate(Collector* out) {
    if (!output_schema_ || late_.empty()) return arrow::Status::OK();
    const int64_t n = static_cast<int64_t>(late_.size());
    ARROW_ASSIGN_OR_RAISE(auto columns, GatherJoinColumns(&late_, *sides_[0].schema,
                                                          *sides_[1].schema, exec_));
    late_.clear();
    late_batches_.clear();
    return out->EmitSide("late",
                         arrow::RecordBatch::Make(output_schema_, n, std::move(columns)));
  }

  const AsofSettings s_;
  cp::ExecContext* exec_ = nullptr;
  std::unique_ptr<cp::Grouper> grouper_;
  bool known_[2] = {false, false};
  JoinSideColumns sides_[2];
  int deleted_index_ = -1;
  std::shared_ptr<arrow::Schema> output_schema_;
  int64_t watermark_ = kMinWatermark;
  BatchStore left_, right_;
  /// Min-heap on (ts, seq) (std::push_heap / pop_heap with std::greater), a
  /// plain vector so that a snapshot can walk it.
  std::vector<PendingRow> pending_;
  uint64_t seq_ = 0;
  std::vector<std::vector<Version>> versions_;  // by group id, ts ascending
  /// Watermark -> groups whose versions can be trimmed then.
  std::map<int64_t, std::vector<uint32_t>> expiring_;
  // Late left rows waiting for the output schema (the right side's first batch).
  std::vector<JoinPair> late_;
  std::vector<std::shared_ptr<arrow::RecordBatch>> late_batches_;
};

template <typename Options>
arrow::Result<AsofSettings> CommonSettings(const PlanNode& node, const Options& o) {
  if (o.left_keys.empty() || o.left_keys.size() != o.right_keys.size()) {
    return arrow::Status::Invalid(node.name,
                                  ": needs the same number (>= 1) of left and right key "
                                  "columns");
  }
  if (o.left_time.empty() || o.right_time.empty()) {
    return arrow::Status::Invalid(node.name,
                                  ": needs an event-time column on both sides");
  }
  if (o.type != JoinType::kInner && o.type != JoinType::kLeft) {
    return arrow::Status::NotImplemented(node.name, ": ", JoinTypeName(o.type),
                                         " join: only inner and left are supported");
  }
  AsofSettings s;
  s.keys[0] = o.left_keys;
  s.keys[1] = o.right_keys;
  s.time[0] = o.left_time;
  s.time[1] = o.right_time;
  s.int_unit = o.int_unit;
  s.type = o.type;
  return s;
}

}  // namespace

void RegisterAsofJoins(OperatorRegistry* registry) {
  ARROW_CHECK_OK(registry->AddOperator(
      "asof_join",
      [](const PlanNode& node, int, int) -> arrow::Result<std::unique_ptr<Operator>> {
        const auto& o = node.options_as<AsofJoinOptions>();
        ARROW_ASSIGN_OR_RAISE(auto s, CommonSettings(node, o));
        if (o.tolerance_ms < 0) {
          return arrow::Status::Invalid(node.name, ": negative tolerance ",
                                        o.tolerance_ms, " ms");
        }
        s.tolerance_ms = o.tolerance_ms;
        return std::make_unique<AsofJoinOperator>(std::move(s));
      }));
  ARROW_CHECK_OK(registry->AddOperator(
      "temporal_join",
      [](const PlanNode& node, int, int) -> arrow::Result<std::unique_ptr<Operator>> {
        const auto& o = node.options_as<TemporalJoinOptions>();
        ARROW_ASSIGN_OR_RAISE(auto s, CommonSettings(node, o));
        s.deleted_column = o.deleted_column;
        return std::make_unique<AsofJoinOperator>(std::move(s));
      }));
}

}  // namespace sabot
