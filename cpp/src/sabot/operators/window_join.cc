// The window join: rows of both sides are buffered per window (one Take per
// window and batch); when the watermark passes a window's end the window's
// left rows are hashed by key (Grouper) and the right rows probe them.
#include <arrow/compute/api_vector.h>
#include <arrow/compute/row/grouper.h>

#include <algorithm>
#include <map>

#include "sabot/exec/operator.h"
#include "sabot/exec/stream_element.h"
#include "sabot/operators/event_time.h"
#include "sabot/operators/event_time_join.h"
#include "sabot/operators/operator_state.h"

namespace sabot {

namespace cp = arrow::compute;

std::string WindowJoinOptions::ToString() const {
  std::string s =
      std::string("window_join(") + JoinTypeName(type) + ", " + window.ToString() + ", ";
  for (size_t i = 0; i < left_keys.size(); ++i) {
    s += (i ? ", " : "") + left_keys[i] + " = " +
         (i < right_keys.size() ? right_keys[i] : "?");
  }
  return s + ", time " + left_time + " / " + right_time + ")";
}

namespace {

int64_t FloorDiv(int64_t t, int64_t size, int64_t offset) {
  int64_t x = t - offset;
  int64_t q = x / size;
  if (x % size != 0 && x < 0) --q;
  return q * size + offset;
}

struct WindowBounds {
  int64_t end, start;
  bool operator<(const WindowBounds& o) const {
    return end != o.end ? end < o.end : start < o.start;
  }
};

class WindowJoinOperator : public Operator {
 public:
  explicit WindowJoinOperator(const WindowJoinOptions& o) : o_(o) {
    slide_ = o_.window.kind == WindowSpec::Kind::kHopping ? o_.window.slide_ms
                                                          : o_.window.size_ms;
  }

  arrow::Status ProcessBatch(int input, const std::shared_ptr<arrow::RecordBatch>& batch,
                             OperatorContext* ctx, Collector* out) override {
    if (input < 0 || input > 1) {
      return arrow::Status::Invalid(ctx->operator_name,
                                    ": a window join has 2 inputs, got input ", input);
    }
    ARROW_RETURN_NOT_OK(InitSide(input, batch, ctx));
    const int64_t n = batch->num_rows();
    if (n == 0) return arrow::Status::OK();
    const auto& time_column = input == 0 ? o_.left_time : o_.right_time;
    auto times_or =
        EventTimeMillis(batch->column(sides_[input].time_index), o_.int_unit, ctx->pool);
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
    const int64_t* t = times->raw_values();
    const int64_t size = o_.window.size_ms;
    std::map<WindowBounds, std::vector<int64_t>> rows_of_window;
    std::vector<int64_t> late_rows;
    for (int64_t i = 0; i < n; ++i) {
      bool assigned = false;
      const int64_t last = FloorDiv(t[i], slide_, o_.window.offset_ms);
      for (int64_t s = last; s > t[i] - size; s -= slide_) {
        if (Fired(s + size)) continue;  // that window already fired
        rows_of_window[{s + size, s}].push_back(i);
        assigned = true;
      }
      if (!assigned) late_rows.push_back(i);
    }
    for (auto& [w, rows] : rows_of_window) {
      std::shared_ptr<arrow::RecordBatch> part = batch;
      if (static_cast<int64_t>(rows.size()) != n) {
        arrow::Int64Builder b(ctx->pool);
        ARROW_RETURN_NOT_OK(b.AppendValues(rows));
        ARROW_ASSIGN_OR_RAISE(auto indices, b.Finish());
        ARROW_ASSIGN_OR_RAISE(
            auto taken,
            cp::Take(batch, indices, cp::TakeOptions::NoBoundsCheck(), exec_));
        part = taken.record_batch();
      }
      windows_[w].batches[input].push_back(std::move(part));
    }
    if (!late_rows.empty()) {
      for (int64_t i : late_rows) {
        late_.push_back(input == 0 ? JoinPair{batch.get(), i, nullptr, 0}
                                   : JoinPair{nullptr, 0, batch.get(), i});
      }
      late_batches_.push_back(batch);
      ARROW_RETURN_NOT_OK(FlushLate(out));
    }
    return arrow::Status::OK();
  }

  arrow::Status OnWatermark(int64_t wm, OperatorContext* ctx, Collector* out) override {
    // Windows fire once both input schemas are known (outer rows need the output
    // schema); a side that never sent a batch leaves nothing to join at the end.
    // Lateness follows the watermark regardless, so that it does not depend on
    // when this instance first saw the other side (and every instance holds
    // the same watermark for a checkpoint).
    watermark_ = wm;
    if (output_schema_ || wm == kMaxWatermark) {
      while (!windows_.empty() && windows_.begin()->first.end - 1 <= wm) {
        auto node = windows_.extract(windows_.begin());
        if (output_schema_)
          ARROW_RETURN_NOT_OK(JoinWindow(node.key(), node.mapped(), out));
      }
    }
    return out->EmitWatermark(wm);
  }

  arrow::Status Close(OperatorContext* ctx, Collector*) override {
    if (!late_.empty() && ctx->side_rows_unconsumed) {
      *ctx->side_rows_unconsumed += static_cast<int64_t>(late_.size());
      late_.clear();
      late_batches_.clear();
    }
    return arrow::Status::OK();
  }

  /// Keyed tables "left_rows" / "right_rows": the rows of each open window:
  /// k0.. (join key), row (struct of the side's columns), window_start,
  /// window_end; "left_late" / "right_late": late rows waiting for the output
  /// schema; "meta": the watermark and both input schemas. The stored batches
  /// are shared, not copied.
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
    meta.schemas["left"] = known_[0] ? sides_[0].schema : nullptr;
    meta.schemas["right"] = known_[1] ? sides_[1].schema : nullptr;
    ARROW_RETURN_NOT_OK(WriteInstanceMeta(writer, meta));
    for (const auto& [w, rows] : windows_) {
      for (int side = 0; side < 2; ++side) {
        for (const auto& batch : rows.batches[side]) {
          StateColumns columns;
          ARROW_RETURN_NOT_OK(AddRowColumns(&columns, side, batch));
          ARROW_RETURN_NOT_OK(
              columns.AddConstant("window_start", w.start, batch->num_rows(), ctx->pool));
          ARROW_RETURN_NOT_OK(
              columns.AddConstant("window_end", w.end, batch->num_rows(), ctx->pool));
          ARROW_ASSIGN_OR_RAISE(auto state, columns.Finish(batch->num_rows()));
          ARROW_RETURN_NOT_OK(writer->WriteKeyed(side == 0 ? "left_rows" : "right_rows",
                                                 state, KeyColumnNames()));
        }
      }
    }
    // Late rows waiting for the output schema (only before both sides were seen).
    for (int side = 0; side < 2; ++side) {
      std::map<const arrow::RecordBatch*, std::vector<int64_t>> rows_of;
      for (const auto& p : late_) {
        if (side == 0 && p.left) rows_of[p.left].push_back(p.left_row);
        if (side == 1 && p.right) rows_of[p.right].push_back(p.right_row);
      }
      for (const auto& batch : late_batches_) {
        auto it = rows_of.find(batch.get());
        if (it == rows_of.end()) continue;
        arrow::Int64Builder b(ctx->pool);
        ARROW_RETURN_NOT_OK(b.AppendValues(it->second));
        ARROW_ASSIGN_OR_RAISE(auto indices, b.Finish());
        ARROW_ASSIGN_OR_RAISE(
            auto taken, cp::Take(batch, indices, cp::TakeOptions::Defaults(), exec_));
        StateColumns columns;
        ARROW_RETURN_NOT_OK(AddRowColumns(&columns, side, taken.record_batch()));
        ARROW_ASSIGN_OR_RAISE(auto state, columns.Finish(it->second.size()));
        ARROW_RETURN_NOT_OK(writer->WriteKeyed(side == 0 ? "left_late" : "right_late",
                                               state, KeyColumnNames()));
        rows_of.erase(it);
      }
    }
    return arrow::Status::OK();
  }

 private:
  std::vector<std::string> KeyColumnNames() const {
    return StateKeyColumns(o_.left_keys.size());
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

  arrow::Status Restore(OperatorContext* ctx) {
    const std::string& name = ctx->operator_name;
    ARROW_ASSIGN_OR_RAISE(auto metas, ReadInstanceMeta(ctx->restore));
    watermark_ = MinMetaValue(metas, "watermark", kMinWatermark);
    for (int side = 0; side < 2; ++side) {
      auto schema = MetaSchema(metas, side == 0 ? "left" : "right");
      if (schema) ARROW_RETURN_NOT_OK(InitSide(side, schema, ctx));
    }
    for (int side = 0; side < 2; ++side) {
      if (!known_[side]) continue;
      ARROW_ASSIGN_OR_RAISE(
          auto batch, ReadKeyedTable(ctx->restore, side == 0 ? "left_rows" : "right_rows",
                                     ctx->pool));
      if (batch) {
        ARROW_ASSIGN_OR_RAISE(auto rows,
                              StructAsRows(batch->GetColumnByName("row"), name));
        ARROW_ASSIGN_OR_RAISE(auto starts, StateInt64(*batch, "window_start", name));
        ARROW_ASSIGN_OR_RAISE(auto ends, StateInt64(*batch, "window_end", name));
        std::map<WindowBounds, std::vector<int64_t>> rows_of_window;
        for (int64_t i = 0; i < rows->num_rows(); ++i)
          rows_of_window[{ends->Value(i), starts->Value(i)}].push_back(i);
        for (auto& [w, indices] : rows_of_window) {
          std::shared_ptr<arrow::RecordBatch> part = rows;
          if (static_cast<int64_t>(indices.size()) != rows->num_rows()) {
            arrow::Int64Builder b(ctx->pool);
            ARROW_RETURN_NOT_OK(b.AppendValues(indices));
            ARROW_ASSIGN_OR_RAISE(auto idx, b.Finish());
            ARROW_ASSIGN_OR_RAISE(
                auto taken, cp::Take(rows, idx, cp::TakeOptions::NoBoundsCheck(), exec_));
            part = taken.record_batch();
          }
          windows_[w].batches[side].push_back(std::move(part));
        }
      }
      ARROW_ASSIGN_OR_RAISE(
          auto late, ReadKeyedTable(ctx->restore, side == 0 ? "left_late" : "right_late",
                                    ctx->pool));
      if (late) {
        ARROW_ASSIGN_OR_RAISE(auto rows,
                              StructAsRows(late->GetColumnByName("row"), name));
        for (int64_t i = 0; i < rows->num_rows(); ++i) {
          late_.push_back(side == 0 ? JoinPair{rows.get(), i, nullptr, 0}
                                    : JoinPair{nullptr, 0, rows.get(), i});
        }
        late_batches_.push_back(rows);
      }
    }
    return arrow::Status::OK();
  }

  struct WindowRows {
    std::vector<std::shared_ptr<arrow::RecordBatch>> batches[2];
  };

  bool Fired(int64_t window_end) const {
    return watermark_ != kMinWatermark && window_end - 1 <= watermark_;
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
    name_ = ctx->operator_name;
    exec_ = ctx->exec_context ? ctx->exec_context : cp::default_exec_context();
    ARROW_ASSIGN_OR_RAISE(
        sides_[input],
        ResolveJoinSide(schema, input == 0 ? o_.left_keys : o_.right_keys,
                        input == 0 ? o_.left_time : o_.right_time, name_, side));
    known_[input] = true;
    if (known_[0] && known_[1]) {
      ARROW_RETURN_NOT_OK(
          CheckJoinKeyTypes(sides_[0], sides_[1], o_.left_keys, o_.right_keys, name_));
      auto ts = arrow::timestamp(arrow::TimeUnit::MILLI, "UTC");
      ARROW_ASSIGN_OR_RAISE(
          output_schema_,
          JoinOutputSchema(
              *sides_[0].schema, *sides_[1].schema,
              {arrow::field("window_start", ts), arrow::field("window_end", ts)}, name_));
    }
    return arrow::Status::OK();
  }

  arrow::Result<std::shared_ptr<arrow::RecordBatch>> Concat(int side,
                                                            WindowRows& rows) const {
    auto& parts = rows.batches[side];
    if (parts.empty()) return nullptr;
    if (parts.size() == 1) return parts[0];
    return arrow::ConcatenateRecordBatches(parts, exec_->memory_pool());
  }

  arrow::Result<std::shared_ptr<arrow::UInt32Array>> GroupIds(
      cp::Grouper* grouper, const arrow::RecordBatch& b, const std::vector<int>& keys) {
    std::vector<cp::ExecValue> values;
    for (int k : keys) values.emplace_back(*b.column_data(k));
    cp::ExecSpan span(values, b.num_rows());
    ARROW_ASSIGN_OR_RAISE(arrow::Datum ids, grouper->Consume(span));
    return std::static_pointer_cast<arrow::UInt32Array>(ids.make_array());
  }

  arrow::Status JoinWindow(const WindowBounds& w, WindowRows& rows, Collector* out) {
    ARROW_ASSIGN_OR_RAISE(auto left, Concat(0, rows));
    ARROW_ASSIGN_OR_RAISE(auto right, Concat(1, rows));
    std::vector<JoinPair> pairs;
    const bool emit_left = EmitsUnmatched(o_.type, 0);
    const bool emit_right = EmitsUnmatched(o_.type, 1);
    if (left && right) {
      std::vector<arrow::TypeHolder> types(sides_[0].key_types.begin(),
                                           sides_[0].key_types.end());
      ARROW_ASSIGN_OR_RAISE(auto grouper, cp::Grouper::Make(types, exec_));
      ARROW_ASSIGN_OR_RAISE(auto lids,
                            GroupIds(grouper.get(), *left, sides_[0].key_indices));
      const uint32_t num_left_groups = grouper->num_groups();
      // Left rows by group, as a CSR: offsets then row numbers.
      const int64_t nl = left->num_rows();
      std::vector<uint8_t> left_valid(nl), left_matched(nl, 0);
      std::vector<int64_t> offsets(num_left_groups + 1, 0), order(nl);
      const uint32_t* lg = lids->raw_values();
      for (int64_t i = 0; i < nl; ++i) {
        left_valid[i] = !HasNullKey(*left, sides_[0].key_indices, i);
        if (left_valid[i]) ++offsets[lg[i] + 1];
      }
      for (uint32_t g = 0; g < num_left_groups; ++g) offsets[g + 1] += offsets[g];
      std::vector<int64_t> fill(offsets.begin(), offsets.end() - 1);
      for (int64_t i = 0; i < nl; ++i) {
        if (left_valid[i]) order[fill[lg[i]]++] = i;
      }
      ARROW_ASSIGN_OR_RAISE(auto rids,
                            GroupIds(grouper.get(), *right, sides_[1].key_indices));
      const uint32_t* rg = rids->raw_values();
      for (int64_t j = 0; j < right->num_rows(); ++j) {
        bool matched = false;
        if (rg[j] < num_left_groups && !HasNullKey(*right, sides_[1].key_indices, j)) {
          for (int64_t k = offsets[rg[j]]; k < offsets[rg[j] + 1]; ++k) {
            pairs.push_back(JoinPair{left.get(), order[k], right.get(), j});
            left_matched[order[k]] = 1;
            matched = true;
          }
        }
        if (!matched && emit_right) pairs.push_back(JoinPair{nullptr, 0, right.get(), j});
      }
      if (emit_left) {
        for (int64_t i = 0; i < nl; ++i) {
          if (!left_matched[i]) pairs.push_back(JoinPair{left.get(), i, nullptr, 0});
        }
      }
    } else if (left && emit_left) {
      for (int64_t i = 0; i < left->num_rows(); ++i)
        pairs.push_back(JoinPair{left.get(), i, nullptr, 0});
    } else if (right && emit_right) {
      for (int64_t j = 0; j < right->num_rows(); ++j)
        pairs.push_back(JoinPair{nullptr, 0, right.get(), j});
    }
    if (pairs.empty()) return arrow::Status::OK();
    return EmitRows(&pairs, &w, out, /*late=*/false);
  }

  arrow::Status EmitRows(std::vector<JoinPair>* pairs, const WindowBounds* w,
                         Collector* out, bool late) {
    const int64_t n = static_cast<int64_t>(pairs->size());
    ARROW_ASSIGN_OR_RAISE(auto columns, GatherJoinColumns(pairs, *sides_[0].schema,
                                                          *sides_[1].schema, exec_));
    auto ts = arrow::timestamp(arrow::TimeUnit::MILLI, "UTC");
    for (int64_t bound : {w ? w->start : 0, w ? w->end : 0}) {
      arrow::TimestampBuilder b(ts, exec_->memory_pool());
      if (w) {
        ARROW_RETURN_NOT_OK(b.AppendValues(std::vector<int64_t>(n, bound)));
      } else {
        ARROW_RETURN_NOT_OK(b.AppendNulls(n));
      }
      ARROW_ASSIGN_OR_RAISE(auto a, b.Finish());
      columns.push_back(std::move(a));
    }
    auto batch = arrow::RecordBatch::Make(output_schema_, n, std::move(columns));
    return late ? out->EmitSide("late", std::move(batch)) : out->Emit(std::move(batch));
  }

  arrow::Status FlushLate(Collector* out) {
    if (!output_schema_ || late_.empty()) return arrow::Status::OK();
    ARROW_RETURN_NOT_OK(EmitRows(&late_, nullptr, out, /*late=*/true));
    late_.clear();
    late_batches_.clear();
    return arrow::Status::OK();
  }

  const WindowJoinOptions& o_;
  int64_t slide_ = 0;
  std::string name_;
  cp::ExecContext* exec_ = nullptr;
  bool known_[2] = {false, false};
  JoinSideColumns sides_[2];
  std::shared_ptr<arrow::Schema> output_schema_;
  int64_t watermark_ = kMinWatermark;
  std::map<WindowBounds, WindowRows> windows_;
  std::vector<JoinPair> late_;
  std::vector<std::shared_ptr<arrow::RecordBatch>> late_batches_;
};

}  // namespace

void RegisterWindowJoin(OperatorRegistry* registry) {
  ARROW_CHECK_OK(registry->AddOperator(
      "window_join",
      [](const PlanNode& node, int, int) -> arrow::Result<std::unique_ptr<Operator>> {
        const auto& o = node.options_as<WindowJoinOptions>();
        if (o.left_keys.empty() || o.left_keys.size() != o.right_keys.size()) {
          return arrow::Status::Invalid(node.name,
                                        ": needs the same number (>= 1) of left and "
                                        "right key columns");
        }
        if (o.left_time.empty() || o.right_time.empty()) {
          return arrow::Status::Invalid(node.name,
                                        ": needs an event-time column on both sides");
        }
        using K = WindowSpec::Kind;
        const auto& w = o.window;
        if (w.kind != K::kTumbling && w.kind != K::kHopping) {
          return arrow::Status::NotImplemented(node.name, ": ", w.ToString(),
                                               ": window joins support tumbling and "
                                               "hopping windows");
        }
        if (w.size_ms <= 0 || (w.kind == K::kHopping && w.slide_ms <= 0)) {
          return arrow::Status::Invalid(node.name, ": invalid ", w.ToString(),
                                        ": size and slide must be > 0");
        }
        return std::make_unique<WindowJoinOperator>(o);
      }));
}

}  // namespace sabot
