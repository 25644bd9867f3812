#include "sabot/operators/event_time.h"

#include <arrow/compute/api_scalar.h>
#include <arrow/compute/api_vector.h>

#include <unordered_map>

#include "sabot/exec/source.h"
#include "sabot/exec/timer_service.h"
#include "sabot/operators/operator_state.h"

namespace sabot {

arrow::Result<int64_t> UnitsPerMilli(const std::string& unit, bool* divide) {
  if (unit == "ms") {
    *divide = false;
    return 1;
  }
  if (unit == "s") {
    *divide = false;
    return 1000;  // multiply seconds by 1000
  }
  if (unit == "us") {
    *divide = true;
    return 1000;
  }
  if (unit == "ns") {
    *divide = true;
    return 1000000;
  }
  return arrow::Status::Invalid("unknown time unit '", unit, "' (s, ms, us, ns)");
}

namespace {
std::string UnitName(arrow::TimeUnit::type unit) {
  switch (unit) {
    case arrow::TimeUnit::SECOND:
      return "s";
    case arrow::TimeUnit::MILLI:
      return "ms";
    case arrow::TimeUnit::MICRO:
      return "us";
    case arrow::TimeUnit::NANO:
      return "ns";
  }
  return "ms";
}

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}
}  // namespace

arrow::Result<std::shared_ptr<arrow::Int64Array>> EventTimeMillis(
    const std::shared_ptr<arrow::Array>& column, const std::string& int_unit,
    arrow::MemoryPool* pool) {
  std::string unit;
  if (column->type_id() == arrow::Type::TIMESTAMP) {
    unit = UnitName(static_cast<const arrow::TimestampType&>(*column->type()).unit());
  } else if (column->type_id() == arrow::Type::INT64) {
    unit = int_unit;
  } else if (column->type_id() == arrow::Type::DATE64) {
    unit = "ms";
  } else {
    return arrow::Status::TypeError("event-time column has type ",
                                    column->type()->ToString(),
                                    "; expected int64 or timestamp");
  }
  auto data = column->data()->Copy();
  data->type = arrow::int64();
  auto values = std::make_shared<arrow::Int64Array>(data);
  bool divide = false;
  ARROW_ASSIGN_OR_RAISE(int64_t factor, UnitsPerMilli(unit, &divide));
  if (factor == 1) return values;
  ARROW_ASSIGN_OR_RAISE(auto buffer, arrow::AllocateBuffer(values->length() * 8, pool));
  auto* out = reinterpret_cast<int64_t*>(buffer->mutable_data());
  const int64_t* in = values->raw_values();
  for (int64_t i = 0; i < values->length(); ++i) {
    out[i] = divide ? FloorDiv(in[i], factor) : in[i] * factor;
  }
  std::shared_ptr<arrow::Buffer> validity;
  if (values->null_count() > 0) {
    ARROW_ASSIGN_OR_RAISE(validity, arrow::AllocateBitmap(values->length(), pool));
    arrow::internal::CopyBitmap(values->null_bitmap_data(), values->offset(),
                                values->length(), validity->mutable_data(), 0);
  }
  return std::make_shared<arrow::Int64Array>(values->length(), std::move(buffer),
                                             std::move(validity), values->null_count());
}

std::string WatermarkOptions::ToString() const {
  return "assign_watermarks(" + time_column + ", " + strategy + ", " +
         std::to_string(max_out_of_orderness_ms) + " ms, idle " +
         std::to_string(idle_timeout_ms) + " ms)";
}

namespace {

class WatermarkAssigner : public Operator {
 public:
  explicit WatermarkAssigner(const WatermarkOptions& o) : o_(o) {}

  arrow::Status Open(OperatorContext* ctx) override {
    source_ = ctx->source;
    if (ctx->restore) ARROW_RETURN_NOT_OK(Restore(ctx));
    return arrow::Status::OK();
  }

  /// Operator state only (an assigner is per source split, not keyed): "meta"
  /// with the largest event time seen, the last emitted watermark and whether
  /// the instance was idle; "splits" (split, max_ts) with per-split tracking.
  std::vector<StateDescriptor> state_tables() const override {
    return {{kMetaTable, "operator"}, {"splits", "operator"}};
  }

  arrow::Status SnapshotState(SnapshotWriter* writer, OperatorContext* ctx) override {
    InstanceMeta meta;
    meta.instance_index = ctx->instance_index;
    meta.parallelism = ctx->parallelism;
    meta.values["max_ts"] = max_ts_;
    meta.values["emitted"] = emitted_;
    meta.values["idle"] = idle_ ? 1 : 0;
    ARROW_RETURN_NOT_OK(WriteInstanceMeta(writer, meta));
    if (splits_.empty()) return arrow::Status::OK();
    arrow::Int64Builder split(ctx->pool), max_ts(ctx->pool);
    for (const auto& [id, state] : splits_) {
      ARROW_RETURN_NOT_OK(split.Append(id));
      ARROW_RETURN_NOT_OK(max_ts.Append(state.max_ts));
    }
    const auto n = static_cast<int64_t>(splits_.size());
    StateColumns columns;
    ARROW_ASSIGN_OR_RAISE(auto split_array, split.Finish());
    ARROW_ASSIGN_OR_RAISE(auto max_ts_array, max_ts.Finish());
    columns.Add("split", split_array);
    columns.Add("max_ts", max_ts_array);
    ARROW_RETURN_NOT_OK(
        columns.AddConstant("instance", ctx->instance_index, n, ctx->pool));
    ARROW_RETURN_NOT_OK(
        columns.AddConstant("parallelism", ctx->parallelism, n, ctx->pool));
    ARROW_ASSIGN_OR_RAISE(auto batch, columns.Finish(n));
    return writer->WriteOperatorState("splits", batch);
  }

  arrow::Status ProcessBatch(int, const std::shared_ptr<arrow::RecordBatch>& batch,
                             OperatorContext* ctx, Collector* out) override {
    auto column = batch->GetColumnByName(o_.time_column);
    if (!column) {
      return arrow::Status::KeyError(ctx->operator_name, ": event-time column '",
                                     o_.time_column, "' is not in the input schema (",
                                     batch->schema()->ToString(false), ")");
    }
    auto ts = EventTimeMillis(column, o_.int_unit, ctx->pool);
    if (!ts.ok()) {
      return ts.status().WithMessage(ctx->operator_name, ": column '", o_.time_column,
                                     "': ", ts.status().message());
    }
    const auto& times = **ts;
    source_ = ctx->source;
    if (started_ms_ == 0) started_ms_ = WallClockMillis();
    if (idle_) {
      idle_ = false;
      ARROW_RETURN_NOT_OK(out->EmitIdle(false));
    }
    last_data_ms_ = WallClockMillis();
    if (o_.idle_timeout_ms > 0 && !timer_pending_) {
      ctx->timers->RegisterProcessingTimeTimer(last_data_ms_ + o_.idle_timeout_ms);
      timer_pending_ = true;
    }
    // Split valid from invalid event times.
    const int64_t n = times.length();
    int64_t bad = 0;
    int64_t max_ts = max_ts_;
    for (int64_t i = 0; i < n; ++i) {
      bool valid = times.IsValid(i) && times.Value(i) >= o_.min_valid_ms &&
                   times.Value(i) <= o_.max_valid_ms;
      bad += !valid;
      if (valid && times.Value(i) > max_ts) max_ts = times.Value(i);
    }
    if (bad == 0) {
      ARROW_RETURN_NOT_OK(out->Emit(batch));
    } else {
      arrow::BooleanBuilder keep(ctx->pool);
      arrow::StringBuilder reasons(ctx->pool);
      ARROW_RETURN_NOT_OK(keep.Reserve(n));
      for (int64_t i = 0; i < n; ++i) {
        bool null = times.IsNull(i);
        bool valid = !null && times.Value(i) >= o_.min_valid_ms &&
                     times.Value(i) <= o_.max_valid_ms;
        keep.UnsafeAppend(valid);
        if (!valid) {
          ARROW_RETURN_NOT_OK(reasons.Append(
              null ? "null event time in column '" + o_.time_column + "'"
                   : "event time " + std::to_string(times.Value(i)) + " ms in column '" +
                         o_.time_column + "' is outside [" +
                         std::to_string(o_.min_valid_ms) + ", " +
                         std::to_string(o_.max_valid_ms) + "]"));
        }
      }
      ARROW_ASSIGN_OR_RAISE(auto mask, keep.Finish());
      ARROW_ASSIGN_OR_RAISE(auto good, arrow::compute::Filter(batch, mask));
      ARROW_ASSIGN_OR_RAISE(auto inverted, arrow::compute::Invert(mask));
      ARROW_ASSIGN_OR_RAISE(auto rejected, arrow::compute::Filter(batch, inverted));
      ARROW_ASSIGN_OR_RAISE(auto reason_array, reasons.Finish());
      auto rejected_batch = rejected.record_batch();
      ARROW_ASSIGN_OR_RAISE(
          rejected_batch,
          rejected_batch->AddColumn(rejected_batch->num_columns(),
                                    arrow::field("error", arrow::utf8()), reason_array));
      if (good.record_batch()->num_rows() > 0)
        ARROW_RETURN_NOT_OK(out->Emit(good.record_batch()));
      ARROW_RETURN_NOT_OK(out->EmitSide("invalid_time", rejected_batch));
    }
    max_ts_ = max_ts;
    if (!o_.split_column.empty()) {
      ARROW_RETURN_NOT_OK(TrackSplits(*batch, times, ctx));
      AdoptRestoredSplits();
      std::optional<int64_t> split_wm = SplitWatermark();
      if (split_wm && *split_wm > emitted_) {
        emitted_ = *split_wm;
        return out->EmitWatermark(*split_wm);
      }
      return arrow::Status::OK();
    }
    std::optional<int64_t> wm;
    if (o_.strategy == "custom") {
      ARROW_ASSIGN_OR_RAISE(wm, o_.custom(*batch, max_ts_));
    } else if (max_ts_ > kMinWatermark) {
      int64_t delay = o_.strategy == "monotonous" ? 0 : o_.max_out_of_orderness_ms;
      wm = max_ts_ - delay - 1;
    }
    if (wm && *wm > emitted_) {
      emitted_ = *wm;
      return out->EmitWatermark(*wm);
    }
    return arrow::Status::OK();
  }

  arrow::Status OnWatermark(int64_t watermark, OperatorContext*,
                            Collector* out) override {
    // Upstream watermarks are replaced by this assigner's, except end of input.
    if (watermark == kMaxWatermark) return out->EmitWatermark(watermark);
    return arrow::Status::OK();
  }

  arrow::Status OnTimer(const Timer& timer, OperatorContext* ctx,
                        Collector* out) override {
    timer_pending_ = false;
    int64_t now = WallClockMillis();
    if (!splits_.empty()) {
      // A split that went quiet stops holding back the others.
      AdoptRestoredSplits();
      std::optional<int64_t> wm = SplitWatermark();
      if (wm && *wm > emitted_) {
        emitted_ = *wm;
        ARROW_RETURN_NOT_OK(out->EmitWatermark(*wm));
      }
    }
    if (now - last_data_ms_ >= o_.idle_timeout_ms) {
      if (!idle_) {
        idle_ = true;
        return out->EmitIdle(true);
      }
      return arrow::Status::OK();
    }
    ctx->timers->RegisterProcessingTimeTimer(last_data_ms_ + o_.idle_timeout_ms);
    timer_pending_ = true;
    return arrow::Status::OK();
  }

 private:
  struct SplitState {
    int64_t max_ts = kMinWatermark;
    int64_t last_data_ms = 0;
  };

  arrow::Status TrackSplits(const arrow::RecordBatch& batch,
                            const arrow::Int64Array& times, OperatorContext* ctx) {
    auto column = batch.GetColumnByName(o_.split_column);
    if (!column) {
      return arrow::Status::KeyError(ctx->operator_name, ": split column '",
                                     o_.split_column, "' is not in the input schema (",
                                     batch.schema()->ToString(false), ")");
    }
    ARROW_ASSIGN_OR_RAISE(auto as_int, arrow::compute::Cast(*column, arrow::int64()));
    const auto& splits = static_cast<const arrow::Int64Array&>(*as_int);
    const int64_t now = WallClockMillis();
    SplitState* state = nullptr;
    int64_t current = 0;
    for (int64_t i = 0; i < times.length(); ++i) {
      if (times.IsNull(i) || splits.IsNull(i)) continue;
      const int64_t t = times.Value(i);
      if (t < o_.min_valid_ms || t > o_.max_valid_ms) continue;
      // Rows of one split usually come together: look the split up only on change.
      if (state == nullptr || splits.Value(i) != current) {
        current = splits.Value(i);
        auto [it, inserted] = splits_.try_emplace(current);
        state = &it->second;
        if (inserted) {
          // A split read before a restore resumes where it was.
          auto restored = restored_splits_.find(current);
          if (restored != restored_splits_.end()) state->max_ts = restored->second;
        }
        state->last_data_ms = now;
      }
      if (t > state->max_ts) state->max_ts = t;
    }
    return arrow::Status::OK();
  }

  // After a restore at another parallelism: a split the source says this
  // instance now reads resumes from its restored maximum before its first row
  // (other restored splits are applied when their first row arrives).
  void AdoptRestoredSplits() {
    if (restored_splits_.empty() || source_ == nullptr) return;
    auto active = source_->ActiveSplits();
    if (!active) return;
    const int64_t now = WallClockMillis();
    for (int64_t split : *active) {
      auto it = restored_splits_.find(split);
      if (it == restored_splits_.end() || splits_.count(split)) continue;
      splits_[split] = SplitState{it->second, now};
    }
  }

  // The minimum over active splits of (largest event time - delay - 1). When
  // the source knows its splits (Kafka: the assigned partitions), a split that
  // has not delivered a row yet holds the watermark back.
  std::optional<int64_t> SplitWatermark() const {
    const int64_t delay = o_.strategy == "monotonous" ? 0 : o_.max_out_of_orderness_ms;
    const int64_t now = WallClockMillis();
    if (source_ != nullptr) {
      auto active = source_->ActiveSplits();
      if (active) {
        if (active->empty()) return std::nullopt;  // nothing assigned yet
        // An assigned split without rows counts once it has been quiet for the
        // idle timeout (from the first batch this assigner saw).
        const bool unseen_may_idle =
            o_.idle_timeout_ms > 0 && now - started_ms_ >= o_.idle_timeout_ms;
        for (int64_t split : *active) {
          if (splits_.count(split) == 0 && !unseen_may_idle) return std::nullopt;
        }
      }
    }
    std::optional<int64_t> wm;
    for (const auto& [split, state] : splits_) {
      if (o_.idle_timeout_ms > 0 && now - state.last_data_ms >= o_.idle_timeout_ms)
        continue;
      if (state.max_ts == kMinWatermark) return std::nullopt;
      int64_t w = state.max_ts - delay - 1;
      if (!wm || w < *wm) wm = w;
    }
    return wm;
  }

  // Restore: the old instances' state (docs/design/operator_state.md). The
  // watermark floor is the instance's own last watermark when the parallelism
  // is unchanged, else the smallest of the old instances' (the merged
  // watermark downstream had reached it), so a restored assigner never emits
  // below what was emitted. Per-split maxima wait until their split shows up.
  arrow::Status Restore(OperatorContext* ctx) {
    ARROW_ASSIGN_OR_RAISE(auto metas, ReadInstanceMeta(ctx->restore));
    if (metas.empty()) return arrow::Status::OK();  // nothing of this assigner was saved
    {
      const int index = ctx->instance_index, parallelism = ctx->parallelism;
      const int64_t min_emitted = MinMetaValue(metas, "emitted", kMinWatermark);
      const int64_t min_max_ts = MinMetaValue(metas, "max_ts", kMinWatermark);
      emitted_ = SameInstanceValue(metas, index, parallelism, "emitted", min_emitted);
      max_ts_ = SameInstanceValue(metas, index, parallelism, "max_ts", min_max_ts);
    }
    // Wall-clock ages do not survive a restart: idleness is measured from the
    // restore, and an instance that gets no row goes idle after the timeout.
    const int64_t now = WallClockMillis();
    ARROW_ASSIGN_OR_RAISE(auto batches, ctx->restore->ReadOperatorState("splits"));
    const std::string& name = ctx->operator_name;
    for (const auto& batch : batches) {
      ARROW_ASSIGN_OR_RAISE(auto split, StateInt64(*batch, "split", name));
      ARROW_ASSIGN_OR_RAISE(auto max_ts, StateInt64(*batch, "max_ts", name));
      ARROW_ASSIGN_OR_RAISE(auto instance, StateInt64(*batch, "instance", name));
      ARROW_ASSIGN_OR_RAISE(auto parallelism, StateInt64(*batch, "parallelism", name));
      for (int64_t i = 0; i < batch->num_rows(); ++i) {
        if (instance->Value(i) == ctx->instance_index &&
            parallelism->Value(i) == ctx->parallelism) {
          // Same parallelism: this instance reads the splits it read before.
          splits_[split->Value(i)] = SplitState{max_ts->Value(i), now};
          continue;
        }
        auto [it, inserted] = restored_splits_.emplace(split->Value(i), max_ts->Value(i));
        if (!inserted) it->second = std::min(it->second, max_ts->Value(i));
      }
    }
    started_ms_ = now;
    last_data_ms_ = now;
    if (o_.idle_timeout_ms > 0) {
      ctx->timers->RegisterProcessingTimeTimer(now + o_.idle_timeout_ms);
      timer_pending_ = true;
    }
    return arrow::Status::OK();
  }

  const WatermarkOptions& o_;
  const SourceReader* source_ = nullptr;
  std::unordered_map<int64_t, int64_t> restored_splits_;  // split -> max_ts
  int64_t started_ms_ = 0;
  std::unordered_map<int64_t, SplitState> splits_;
  int64_t max_ts_ = kMinWatermark;
  int64_t emitted_ = kMinWatermark;
  int64_t last_data_ms_ = 0;
  bool idle_ = false;
  bool timer_pending_ = false;
};

}  // namespace

void RegisterWatermarkAssigner(OperatorRegistry* registry) {
  ARROW_CHECK_OK(registry->AddOperator(
      "assign_watermarks",
      [](const PlanNode& node, int, int) -> arrow::Result<std::unique_ptr<Operator>> {
        const auto& o = node.options_as<WatermarkOptions>();
        if (o.time_column.empty()) {
          return arrow::Status::Invalid(node.name, ": no event-time column given");
        }
        if (o.strategy != "bounded" && o.strategy != "monotonous" &&
            o.strategy != "custom") {
          return arrow::Status::Invalid(node.name, ": unknown watermark strategy '",
                                        o.strategy, "' (bounded, monotonous, custom)");
        }
        if (!o.split_column.empty() && o.strategy == "custom") {
          return arrow::Status::Invalid(
              node.name,
              ": per-split watermarks use the bounded or monotonous "
              "strategy, not a custom function");
        }
        if (o.strategy == "custom" && !o.custom) {
          return arrow::Status::Invalid(node.name,
                                        ": custom watermark strategy without a function");
        }
        if (o.max_out_of_orderness_ms < 0) {
          return arrow::Status::Invalid(node.name,
                                        ": max_out_of_orderness_ms must be >= 0");
        }
        bool divide;
        ARROW_RETURN_NOT_OK(UnitsPerMilli(o.int_unit, &divide));
        return std::make_unique<WatermarkAssigner>(o);
      }));
}

}  // namespace sabot
