// The interval join: per side, buffered batches plus per-key lists of row
// references; each incoming batch probes the other side's lists of its keys
// (group ids from one Grouper shared by both sides), and the matches are
// gathered with one Take per (probe batch, stored batch) pair.
#include <arrow/compute/api_vector.h>
#include <arrow/compute/row/grouper.h>

#include <algorithm>
#include <map>

#include "sabot/exec/operator.h"
#include "sabot/exec/stream_element.h"
#include "sabot/operators/event_time.h"
#include "sabot/operators/event_time_join.h"
#include "sabot/operators/join_output.h"
#include "sabot/operators/operator_state.h"

namespace sabot {

namespace cp = arrow::compute;

std::string IntervalJoinOptions::ToString() const {
  return std::string("interval_join(") + JoinTypeName(type) + ", " +
         JoinKeysToString(left_keys, right_keys) + ", right." + right_time +
         " between left." + left_time + " + " + std::to_string(lower_ms) + " ms and + " +
         std::to_string(upper_ms) + " ms)";
}

namespace {

/// A row held in join state.
struct StoredRow {
  uint32_t batch;  // slot in SideState::batches
  uint32_t row;
  int64_t ts;
  bool matched;
};

struct SideState {
  bool known = false;
  JoinSideColumns columns;
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;  // by slot
  std::vector<int64_t> live_rows;                            // by slot
  std::vector<uint32_t> free_slots;
  std::vector<std::vector<StoredRow>> rows_by_group;
  /// Expiry time -> groups holding a row that expires then (one entry per row
  /// at most, consecutive duplicates folded): cleanup visits only those groups.
  std::map<int64_t, std::vector<uint32_t>> expiring;
  int64_t num_rows = 0;

  uint32_t AddBatch(std::shared_ptr<arrow::RecordBatch> batch) {
    uint32_t slot;
    if (!free_slots.empty()) {
      slot = free_slots.back();
      free_slots.pop_back();
      batches[slot] = std::move(batch);
      live_rows[slot] = 0;
    } else {
      slot = static_cast<uint32_t>(batches.size());
      batches.push_back(std::move(batch));
      live_rows.push_back(0);
    }
    return slot;
  }
  void ReleaseRow(uint32_t slot) {
    if (--live_rows[slot] == 0) {
      batches[slot].reset();
      free_slots.push_back(slot);
    }
  }
};

class IntervalJoinOperator : public Operator {
 public:
  explicit IntervalJoinOperator(const IntervalJoinOptions& o) : o_(o) {}

  arrow::Status ProcessBatch(int input, const std::shared_ptr<arrow::RecordBatch>& batch,
                             OperatorContext* ctx, Collector* out) override {
    if (input < 0 || input > 1) {
      return arrow::Status::Invalid(ctx->operator_name,
                                    ": an interval join has 2 inputs, got input ", input);
    }
    ARROW_RETURN_NOT_OK(InitSide(input, batch, ctx));
    const int64_t n = batch->num_rows();
    if (n == 0) return arrow::Status::OK();
    SideState& self = sides_[input];
    SideState& other = sides_[1 - input];
    const auto& time_column = input == 0 ? o_.left_time : o_.right_time;
    auto times_or =
        EventTimeMillis(batch->column(self.columns.time_index), o_.int_unit, ctx->pool);
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
    for (int k : self.columns.key_indices) values.emplace_back(*batch->column_data(k));
    cp::ExecSpan span(values, n);
    ARROW_ASSIGN_OR_RAISE(arrow::Datum ids_datum, grouper_->Consume(span));
    auto ids = std::static_pointer_cast<arrow::UInt32Array>(ids_datum.make_array());
    const uint32_t num_groups = grouper_->num_groups();
    for (auto& s : sides_) {
      if (s.rows_by_group.size() < num_groups) s.rows_by_group.resize(num_groups);
    }
    const uint32_t* gid = ids->raw_values();
    const int64_t* t = times->raw_values();
    const bool left = input == 0;
    uint32_t slot = self.AddBatch(batch);
    const arrow::RecordBatch* probe = batch.get();
    std::vector<JoinPair> pairs;
    std::vector<int64_t> late_rows;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t ts = t[i];
      if (watermark_ != kMinWatermark && ts <= watermark_) {
        late_rows.push_back(i);
        continue;
      }
      // A row with a null key never matches; it is stored all the same, so that
      // an outer join emits it at cleanup like any other unmatched row.
      const bool null_key = HasNullKey(*batch, self.columns.key_indices, i);
      // Matching right timestamps for a left row at ts: [ts + lower, ts + upper];
      // for a right row at ts, left timestamps in [ts - upper, ts - lower].
      const int64_t lo = left ? ts + o_.lower_ms : ts - o_.upper_ms;
      const int64_t hi = left ? ts + o_.upper_ms : ts - o_.lower_ms;
      bool matched = false;
      for (StoredRow& r : other.rows_by_group[gid[i]]) {
        if (null_key) break;
        if (r.ts < lo || r.ts > hi) continue;
        r.matched = true;
        matched = true;
        const auto* stored = other.batches[r.batch].get();
        pairs.push_back(left ? JoinPair{probe, i, stored, r.row}
                             : JoinPair{stored, r.row, probe, i});
      }
      self.rows_by_group[gid[i]].push_back(
          StoredRow{slot, static_cast<uint32_t>(i), ts, matched});
      ++self.live_rows[slot];
      ++self.num_rows;
      auto& groups = self.expiring[left ? ts + o_.upper_ms : ts - o_.lower_ms];
      if (groups.empty() || groups.back() != gid[i]) groups.push_back(gid[i]);
    }
    if (self.live_rows[slot] == 0) {
      self.live_rows[slot] = 1;
      self.ReleaseRow(slot);
    }
    ARROW_RETURN_NOT_OK(EmitPairs(&pairs, ctx, out));
    if (!late_rows.empty()) {
      for (int64_t i : late_rows) late_.push_back(Unmatched(input, probe, i));
      late_batches_.push_back(batch);  // keeps `probe` alive until flushed
      ARROW_RETURN_NOT_OK(FlushLate(ctx, out));
    }
    return arrow::Status::OK();
  }

  arrow::Status OnWatermark(int64_t wm, OperatorContext* ctx, Collector* out) override {
    watermark_ = wm;
    // Outer rows need the output schema, so cleanup waits until both sides are
    // known (except for sides whose unmatched rows are not emitted).
    std::vector<JoinPair> unmatched;
    std::vector<std::shared_ptr<arrow::RecordBatch>> keep_alive;
    for (int side = 0; side < 2; ++side) {
      const bool emit = EmitsUnmatched(o_.type, side);
      if (emit && !output_schema_ && wm != kMaxWatermark) continue;
      ARROW_RETURN_NOT_OK(
          Cleanup(side, wm, emit && output_schema_, &unmatched, &keep_alive));
    }
    ARROW_RETURN_NOT_OK(EmitPairs(&unmatched, ctx, out));
    return out->EmitWatermark(wm);
  }

  arrow::Status Close(OperatorContext* ctx, Collector* out) override {
    if (!late_.empty() && ctx->side_rows_unconsumed) {
      // The other input never sent a batch, so no output schema could be built.
      *ctx->side_rows_unconsumed += static_cast<int64_t>(late_.size());
      late_.clear();
      late_batches_.clear();
    }
    return arrow::Status::OK();
  }

  /// Keyed tables "left_rows" / "right_rows": every buffered row of a side:
  /// k0.. (its join key), row (struct of the side's columns), ts, matched;
  /// "left_late" / "right_late": late rows waiting for the output schema (k0..,
  /// row); "meta": the watermark and both input schemas.
  std::vector<StateDescriptor> state_tables() const override {
    return {{kMetaTable, "operator"},
            {"left_rows", "keyed"},
            {"right_rows", "keyed"},
            {"left_late", "keyed"},
            {"right_late", "keyed"}};
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
    meta.schemas["left"] = sides_[0].known ? sides_[0].columns.schema : nullptr;
    meta.schemas["right"] = sides_[1].known ? sides_[1].columns.schema : nullptr;
    ARROW_RETURN_NOT_OK(WriteInstanceMeta(writer, meta));
    for (int side = 0; side < 2; ++side) {
      SideState& s = sides_[side];
      if (!s.known) continue;
      // Rows by stored batch: one Take per batch with live rows.
      std::vector<std::vector<const StoredRow*>> by_slot(s.batches.size());
      for (const auto& rows : s.rows_by_group) {
        for (const auto& r : rows) by_slot[r.batch].push_back(&r);
      }
      for (size_t slot = 0; slot < by_slot.size(); ++slot) {
        const auto& rows = by_slot[slot];
        if (rows.empty()) continue;
        std::vector<int64_t> indices, ts;
        arrow::BooleanBuilder matched(ctx->pool);
        for (const auto* r : rows) {
          indices.push_back(r->row);
          ts.push_back(r->ts);
          ARROW_RETURN_NOT_OK(matched.Append(r->matched));
        }
        ARROW_ASSIGN_OR_RAISE(auto taken, TakeRows(s.batches[slot], indices, ctx));
        StateColumns columns;
        ARROW_RETURN_NOT_OK(AddRowColumns(&columns, side, taken));
        ARROW_RETURN_NOT_OK(AddInt64(&columns, "ts", ts, ctx));
        ARROW_ASSIGN_OR_RAISE(auto matched_array, matched.Finish());
        columns.Add("matched", matched_array);
        ARROW_ASSIGN_OR_RAISE(auto batch, columns.Finish(taken->num_rows()));
        ARROW_RETURN_NOT_OK(writer->WriteKeyed(side == 0 ? "left_rows" : "right_rows",
                                               batch, KeyColumnNames()));
      }
    }
    return SnapshotLate(writer, ctx);
  }

 private:
  std::vector<std::string> KeyColumnNames() const {
    return StateKeyColumns(o_.left_keys.size());
  }

  static arrow::Result<std::shared_ptr<arrow::RecordBatch>> TakeRows(
      const std::shared_ptr<arrow::RecordBatch>& batch, const std::vector<int64_t>& rows,
      OperatorContext* ctx) {
    if (static_cast<int64_t>(rows.size()) == batch->num_rows()) {
      bool identity = true;
      for (size_t i = 0; i < rows.size() && identity; ++i)
        identity = rows[i] == static_cast<int64_t>(i);
      if (identity) return batch;  // shared, not copied
    }
    arrow::Int64Builder b(ctx->pool);
    ARROW_RETURN_NOT_OK(b.AppendValues(rows));
    ARROW_ASSIGN_OR_RAISE(auto indices, b.Finish());
    ARROW_ASSIGN_OR_RAISE(
        auto taken,
        cp::Take(batch, indices, cp::TakeOptions::NoBoundsCheck(), ctx->exec_context));
    return taken.record_batch();
  }

  // k0.. (the side's key columns) and the rows as one struct column.
  arrow::Status AddRowColumns(StateColumns* columns, int side,
                              const std::shared_ptr<arrow::RecordBatch>& rows) {
    std::vector<std::shared_ptr<arrow::Array>> keys;
    for (int k : sides_[side].columns.key_indices) keys.push_back(rows->column(k));
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

  arrow::Status SnapshotLate(SnapshotWriter* writer, OperatorContext* ctx) {
    for (int side = 0; side < 2; ++side) {
      std::map<const arrow::RecordBatch*, std::vector<int64_t>> rows_of;
      for (const auto& p : late_) {
        if (side == 0 && p.left) rows_of[p.left].push_back(p.left_row);
        if (side == 1 && p.right) rows_of[p.right].push_back(p.right_row);
      }
      for (const auto& batch : late_batches_) {
        auto it = rows_of.find(batch.get());
        if (it == rows_of.end()) continue;
        ARROW_ASSIGN_OR_RAISE(auto taken, TakeRows(batch, it->second, ctx));
        StateColumns columns;
        ARROW_RETURN_NOT_OK(AddRowColumns(&columns, side, taken));
        ARROW_ASSIGN_OR_RAISE(auto state, columns.Finish(taken->num_rows()));
        ARROW_RETURN_NOT_OK(writer->WriteKeyed(side == 0 ? "left_late" : "right_late",
                                               state, KeyColumnNames()));
        rows_of.erase(it);
      }
    }
    return arrow::Status::OK();
  }

  arrow::Status Restore(OperatorContext* ctx) {
    const std::string& name = ctx->operator_name;
    ARROW_ASSIGN_OR_RAISE(auto metas, ReadInstanceMeta(ctx->restore));
    watermark_ = MinMetaValue(metas, "watermark", kMinWatermark);
    for (int side = 0; side < 2; ++side) {
      auto schema = MetaSchema(metas, side == 0 ? "left" : "right");
      if (schema) ARROW_RETURN_NOT_OK(InitSide(side, schema, ctx));
    }
    for (int side = 0; side < 2; ++side) {
      SideState& s = sides_[side];
      ARROW_ASSIGN_OR_RAISE(
          auto batch, ReadKeyedTable(ctx->restore, side == 0 ? "left_rows" : "right_rows",
                                     ctx->pool));
      if (batch && s.known) {
        ARROW_ASSIGN_OR_RAISE(auto rows,
                              StructAsRows(batch->GetColumnByName("row"), name));
        ARROW_ASSIGN_OR_RAISE(auto ts, StateInt64(*batch, "ts", name));
        ARROW_ASSIGN_OR_RAISE(auto matched, StateBool(*batch, "matched", name));
        ARROW_ASSIGN_OR_RAISE(auto ids, GroupIds(side, *rows));
        const int64_t n = rows->num_rows();
        const uint32_t slot = s.AddBatch(rows);
        for (int64_t i = 0; i < n; ++i) {
          const uint32_t g = ids->Value(i);
          const int64_t t = ts->Value(i);
          s.rows_by_group[g].push_back(
              StoredRow{slot, static_cast<uint32_t>(i), t, matched->Value(i)});
          ++s.live_rows[slot];
          ++s.num_rows;
          auto& groups = s.expiring[side == 0 ? t + o_.upper_ms : t - o_.lower_ms];
          if (groups.empty() || groups.back() != g) groups.push_back(g);
        }
        if (s.live_rows[slot] == 0) {
          s.live_rows[slot] = 1;
          s.ReleaseRow(slot);
        }
      }
      ARROW_ASSIGN_OR_RAISE(
          auto late, ReadKeyedTable(ctx->restore, side == 0 ? "left_late" : "right_late",
                                    ctx->pool));
      if (late && s.known) {
        ARROW_ASSIGN_OR_RAISE(auto rows,
                              StructAsRows(late->GetColumnByName("row"), name));
        for (int64_t i = 0; i < rows->num_rows(); ++i)
          late_.push_back(Unmatched(side, rows.get(), i));
        late_batches_.push_back(rows);
      }
    }
    return arrow::Status::OK();
  }

  // Group ids of `rows` of `side` in the grouper both sides share.
  arrow::Result<std::shared_ptr<arrow::UInt32Array>> GroupIds(
      int side, const arrow::RecordBatch& rows) {
    std::vector<cp::ExecValue> values;
    for (int k : sides_[side].columns.key_indices)
      values.emplace_back(*rows.column_data(k));
    cp::ExecSpan span(values, rows.num_rows());
    ARROW_ASSIGN_OR_RAISE(arrow::Datum ids_datum, grouper_->Consume(span));
    const uint32_t num_groups = grouper_->num_groups();
    for (auto& s : sides_) {
      if (s.rows_by_group.size() < num_groups) s.rows_by_group.resize(num_groups);
    }
    return std::static_pointer_cast<arrow::UInt32Array>(ids_datum.make_array());
  }

  static JoinPair Unmatched(int side, const arrow::RecordBatch* b, int64_t row) {
    return side == 0 ? JoinPair{b, row, nullptr, 0} : JoinPair{nullptr, 0, b, row};
  }

  arrow::Status InitSide(int input, const std::shared_ptr<arrow::RecordBatch>& batch,
                         OperatorContext* ctx) {
    return InitSide(input, batch->schema(), ctx);
  }

  arrow::Status InitSide(int input, const std::shared_ptr<arrow::Schema>& schema,
                         OperatorContext* ctx) {
    SideState& s = sides_[input];
    if (s.known) {
      if (!schema->Equals(*s.columns.schema, false)) {
        return arrow::Status::TypeError(
            ctx->operator_name, ": ", input == 0 ? "left" : "right",
            " input changed schema from ", s.columns.schema->ToString(false), " to ",
            schema->ToString(false));
      }
      return arrow::Status::OK();
    }
    exec_ = ctx->exec_context ? ctx->exec_context : cp::default_exec_context();
    const auto& keys = input == 0 ? o_.left_keys : o_.right_keys;
    const auto& time = input == 0 ? o_.left_time : o_.right_time;
    ARROW_ASSIGN_OR_RAISE(s.columns,
                          ResolveJoinSide(schema, keys, time, ctx->operator_name,
                                          input == 0 ? "left" : "right"));
    s.known = true;
    const SideState& other = sides_[1 - input];
    if (other.known) {
      const auto& l = sides_[0].columns;
      const auto& r = sides_[1].columns;
      ARROW_RETURN_NOT_OK(
          CheckJoinKeyTypes(l, r, o_.left_keys, o_.right_keys, ctx->operator_name));
      ARROW_ASSIGN_OR_RAISE(
          output_schema_, JoinOutputSchema(*l.schema, *r.schema, {}, ctx->operator_name));
    } else {
      std::vector<arrow::TypeHolder> types(s.columns.key_types.begin(),
                                           s.columns.key_types.end());
      ARROW_ASSIGN_OR_RAISE(grouper_, cp::Grouper::Make(types, exec_));
    }
    return arrow::Status::OK();
  }

  // Drops the rows of `side` that no future row of the other side can match
  // (expiry <= wm); unmatched ones go to `unmatched` when `emit`.
  arrow::Status Cleanup(int side, int64_t wm, bool emit, std::vector<JoinPair>* unmatched,
                        std::vector<std::shared_ptr<arrow::RecordBatch>>* keep_alive) {
    SideState& s = sides_[side];
    std::vector<uint32_t> groups;
    while (!s.expiring.empty() && s.expiring.begin()->first <= wm) {
      auto& g = s.expiring.begin()->second;
      groups.insert(groups.end(), g.begin(), g.end());
      s.expiring.erase(s.expiring.begin());
    }
    std::sort(groups.begin(), groups.end());
    groups.erase(std::unique(groups.begin(), groups.end()), groups.end());
    const bool left = side == 0;
    for (uint32_t g : groups) {
      auto& rows = s.rows_by_group[g];
      size_t kept = 0;
      for (size_t i = 0; i < rows.size(); ++i) {
        const StoredRow& r = rows[i];
        const int64_t expiry = left ? r.ts + o_.upper_ms : r.ts - o_.lower_ms;
        if (expiry > wm) {
          rows[kept++] = r;
          continue;
        }
        if (emit && !r.matched) {
          keep_alive->push_back(s.batches[r.batch]);
          unmatched->push_back(Unmatched(side, s.batches[r.batch].get(), r.row));
        }
        --s.num_rows;
        s.ReleaseRow(r.batch);
      }
      rows.resize(kept);
      if (kept == 0) rows.shrink_to_fit();
    }
    return arrow::Status::OK();
  }

  arrow::Status EmitPairs(std::vector<JoinPair>* pairs, OperatorContext* ctx,
                          Collector* out) {
    if (pairs->empty()) return arrow::Status::OK();
    if (!output_schema_) {
      return arrow::Status::Invalid(
          ctx->operator_name, ": internal: output before both input schemas are known");
    }
    const int64_t n = static_cast<int64_t>(pairs->size());
    ARROW_ASSIGN_OR_RAISE(auto columns,
                          GatherJoinColumns(pairs, *sides_[0].columns.schema,
                                            *sides_[1].columns.schema, exec_));
    pairs->clear();
    return out->Emit(arrow::RecordBatch::Make(output_schema_, n, std::move(columns)));
  }

  arrow::Status FlushLate(OperatorContext* ctx, Collector* out) {
    if (!output_schema_ || late_.empty()) return arrow::Status::OK();
    const int64_t n = static_cast<int64_t>(late_.size());
    ARROW_ASSIGN_OR_RAISE(auto columns,
                          GatherJoinColumns(&late_, *sides_[0].columns.schema,
                                            *sides_[1].columns.schema, exec_));
    late_.clear();
    late_batches_.clear();
    return out->EmitSide("late",
                         arrow::RecordBatch::Make(output_schema_, n, std::move(columns)));
  }

  const IntervalJoinOptions& o_;
  cp::ExecContext* exec_ = nullptr;
  std::unique_ptr<cp::Grouper> grouper_;
  SideState sides_[2];
  std::shared_ptr<arrow::Schema> output_schema_;
  int64_t watermark_ = kMinWatermark;
  // Late rows waiting for the output schema (the other side's first batch).
  std::vector<JoinPair> late_;
  std::vector<std::shared_ptr<arrow::RecordBatch>> late_batches_;
};

}  // namespace

void RegisterIntervalJoin(OperatorRegistry* registry) {
  ARROW_CHECK_OK(registry->AddOperator(
      "interval_join",
      [](const PlanNode& node, int, int) -> arrow::Result<std::unique_ptr<Operator>> {
        const auto& o = node.options_as<IntervalJoinOptions>();
        if (o.left_keys.empty() || o.left_keys.size() != o.right_keys.size()) {
          return arrow::Status::Invalid(node.name,
                                        ": needs the same number (>= 1) of left and "
                                        "right key columns");
        }
        if (o.left_time.empty() || o.right_time.empty()) {
          return arrow::Status::Invalid(node.name,
                                        ": needs an event-time column on both sides");
        }
        if (o.lower_ms > o.upper_ms) {
          return arrow::Status::Invalid(node.name, ": lower bound ", o.lower_ms,
                                        " ms is above upper bound ", o.upper_ms, " ms");
        }
        return std::make_unique<IntervalJoinOperator>(o);
      }));
}

}  // namespace sabot
