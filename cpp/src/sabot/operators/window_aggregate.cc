#include "sabot/operators/window_aggregate.h"

#include <arrow/compute/api_vector.h>
#include <arrow/compute/row/grouper.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <set>

#include "sabot/exec/partitioner.h"
#include "sabot/exec/stream_element.h"
#include "sabot/operators/event_time.h"
#include "sabot/operators/key_table.h"
#include "sabot/operators/operator_state.h"

namespace sabot {

namespace cp = arrow::compute;

std::string WindowSpec::ToString() const {
  switch (kind) {
    case Kind::kTumbling:
      return "tumbling(" + std::to_string(size_ms) + " ms)";
    case Kind::kHopping:
      return "hopping(" + std::to_string(size_ms) + " ms, slide " +
             std::to_string(slide_ms) + " ms)";
    case Kind::kCumulate:
      return "cumulate(" + std::to_string(size_ms) + " ms, step " +
             std::to_string(slide_ms) + " ms)";
    case Kind::kSession:
      return "session(gap " + std::to_string(gap_ms) + " ms)";
    case Kind::kCountTumbling:
      return "count(" + std::to_string(count) + ")";
    case Kind::kCountSliding:
      return "count(" + std::to_string(count) + ", slide " + std::to_string(count_slide) +
             ")";
    case Kind::kGlobal:
      return "global";
  }
  return "?";
}

std::string WindowAggregateOptions::ToString() const {
  std::string s = "window_aggregate(" + window.ToString() + ", keys [";
  for (size_t i = 0; i < keys.size(); ++i) s += (i ? ", " : "") + keys[i];
  s += "], ";
  for (size_t i = 0; i < aggregates.size(); ++i)
    s += (i ? ", " : "") + aggregates[i].ToString();
  return s + ")";
}

namespace {

int64_t FloorTo(int64_t t, int64_t size, int64_t offset) {
  int64_t x = t - offset;
  int64_t q = x / size;
  if (x % size != 0 && x < 0) --q;
  return q * size + offset;
}

// Accumulators for a set of groups.
struct GroupState {
  std::unique_ptr<KeyTable> keys;
  std::vector<std::unique_ptr<Accumulator>> accs;
  void Resize(int64_t n) {
    for (auto& a : accs) a->Resize(n);
  }
};

class WindowAggregateOperator : public Operator {
 public:
  explicit WindowAggregateOperator(const WindowAggregateOptions& o) : o_(o) {
    using K = WindowSpec::Kind;
    const auto& w = o_.window;
    time_windows_ =
        w.kind == K::kTumbling || w.kind == K::kHopping || w.kind == K::kCumulate;
    if (w.kind == K::kTumbling) {
      pane_ = w.size_ms;
    } else if (w.kind == K::kHopping) {
      pane_ = std::gcd(w.size_ms, w.slide_ms);
    } else if (w.kind == K::kCumulate) {
      pane_ = w.slide_ms;
    }
    emits_updates_ =
        o_.allowed_lateness_ms > 0 ||
        (time_windows_ && (o_.trigger.every_rows > 0 || o_.trigger.every_ms > 0)) ||
        (w.kind == K::kSession && o_.allowed_lateness_ms > 0) ||
        (w.kind == K::kGlobal && !o_.trigger.purge);
  }

  arrow::Status Open(OperatorContext* ctx) override {
    if (o_.trigger.every_ms > 0) {
      ctx->timers->RegisterProcessingTimeTimer(WallClockMillis() + o_.trigger.every_ms,
                                               "trigger");
    }
    if (ctx->restore) ARROW_RETURN_NOT_OK(Restore(ctx));
    return arrow::Status::OK();
  }

  /// State tables (docs/design/operator_state.md): "meta" (operator state: the
  /// watermark, the input schema, counters), and by window kind one keyed table:
  /// "panes" (time windows), "sessions" or "count_windows" (count and global).
  std::vector<StateDescriptor> state_tables() const override {
    return {{kMetaTable, "operator"},
            {"panes", "keyed"},
            {"sessions", "keyed"},
            {"count_windows", "keyed"}};
  }

  arrow::Status SnapshotState(SnapshotWriter* writer, OperatorContext* ctx) override {
    InstanceMeta meta;
    meta.instance_index = ctx->instance_index;
    meta.parallelism = ctx->parallelism;
    meta.values["watermark"] = watermark_;
    meta.values["rows_since_fire"] = rows_since_fire_;
    meta.values["fired_until"] = fired_until_;
    meta.schemas["input"] = input_schema_;
    ARROW_RETURN_NOT_OK(WriteInstanceMeta(writer, meta));
    if (!input_schema_) return arrow::Status::OK();
    if (time_windows_) return SnapshotPanes(writer);
    if (o_.window.kind == WindowSpec::Kind::kSession) return SnapshotSessions(writer);
    return SnapshotCountWindows(writer);
  }

  arrow::Status ProcessBatch(int, const std::shared_ptr<arrow::RecordBatch>& batch,
                             OperatorContext* ctx, Collector* out) override {
    if (!input_schema_) ARROW_RETURN_NOT_OK(Init(*batch->schema(), ctx));
    if (batch->num_rows() == 0) return arrow::Status::OK();
    // Event time of every row (ms), or the wall clock.
    std::shared_ptr<arrow::Int64Array> times;
    if (o_.processing_time) {
      ARROW_ASSIGN_OR_RAISE(times,
                            ConstantTimes(WallClockMillis(), batch->num_rows(), ctx));
    } else if (time_index_ >= 0) {
      auto ts = EventTimeMillis(batch->column(time_index_), o_.int_unit, ctx->pool);
      if (!ts.ok()) {
        return ts.status().WithMessage(ctx->operator_name, ": column '", o_.time_column,
                                       "': ", ts.status().message());
      }
      times = *ts;
      if (times->null_count() > 0 &&
          (time_windows_ || o_.window.kind == WindowSpec::Kind::kSession)) {
        return arrow::Status::Invalid(
            ctx->operator_name, ": null event time in column '", o_.time_column,
            "'; assign watermarks first (they route such rows to the "
            "\"invalid_time\" side output)");
      }
    }
    using K = WindowSpec::Kind;
    switch (o_.window.kind) {
      case K::kTumbling:
      case K::kHopping:
      case K::kCumulate:
        ARROW_RETURN_NOT_OK(ProcessTimeWindows(batch, *times, ctx, out));
        break;
      case K::kSession:
        ARROW_RETURN_NOT_OK(ProcessSessions(batch, *times, ctx, out));
        break;
      default:
        ARROW_RETURN_NOT_OK(ProcessCountOrGlobal(batch, times.get(), ctx, out));
    }
    if (time_windows_ && o_.trigger.every_rows > 0) {
      rows_since_fire_ += batch->num_rows();
      if (rows_since_fire_ >= o_.trigger.every_rows) {
        rows_since_fire_ = 0;
        ARROW_RETURN_NOT_OK(EarlyFire(ctx, out));
      }
    }
    return arrow::Status::OK();
  }

  arrow::Status OnWatermark(int64_t wm, OperatorContext* ctx, Collector* out) override {
    watermark_ = wm;
    if (input_schema_) {
      if (time_windows_ && (!o_.processing_time || wm == kMaxWatermark)) {
        ARROW_RETURN_NOT_OK(FireTimeWindows(wm, ctx, out));
      } else if (o_.window.kind == WindowSpec::Kind::kSession) {
        ARROW_RETURN_NOT_OK(FireSessions(wm, ctx, out));
      } else if (wm == kMaxWatermark && !time_windows_) {
        ARROW_RETURN_NOT_OK(FireAllKeys(out));
      }
    }
    return out->EmitWatermark(wm);
  }

  arrow::Status OnTimer(const Timer& timer, OperatorContext* ctx,
                        Collector* out) override {
    if (!input_schema_) {
      if (timer.key == "trigger") {
        ctx->timers->RegisterProcessingTimeTimer(timer.time + o_.trigger.every_ms,
                                                 "trigger");
      }
      return arrow::Status::OK();
    }
    if (timer.key == "trigger") {
      ctx->timers->RegisterProcessingTimeTimer(WallClockMillis() + o_.trigger.every_ms,
                                               "trigger");
      if (time_windows_) return EarlyFire(ctx, out);
      if (o_.window.kind == WindowSpec::Kind::kGlobal) return FireDirtyKeys(ctx, out);
      return arrow::Status::OK();
    }
    // Processing-time window end.
    fired_until_ = std::max(fired_until_, timer.time - 1);
    return FireTimeWindows(timer.time - 1, ctx, out);
  }

 private:
  // --- setup ----------------------------------------------------------------

  arrow::Status Init(const arrow::Schema& schema, OperatorContext* ctx) {
    input_schema_ = std::make_shared<arrow::Schema>(schema);
    name_ = ctx->operator_name;
    pool_ = ctx->pool;
    exec_ = ctx->exec_context;
    ARROW_ASSIGN_OR_RAISE(key_indices_, ResolveKeyColumns(schema, o_.keys, name_));
    for (int i : key_indices_) key_types_.push_back(schema.field(i)->type());
    if (!o_.time_column.empty() && !o_.processing_time) {
      time_index_ = schema.GetFieldIndex(o_.time_column);
      if (time_index_ < 0) {
        return arrow::Status::KeyError(name_, ": event-time column '", o_.time_column,
                                       "' is not in the input schema (",
                                       schema.ToString(false), ")");
      }
    } else if (!o_.processing_time &&
               (time_windows_ || o_.window.kind == WindowSpec::Kind::kSession)) {
      return arrow::Status::Invalid(name_, ": ", o_.window.ToString(),
                                    " needs an event-time column (or processing time)");
    }
    ARROW_ASSIGN_OR_RAISE(agg_indices_,
                          ResolveAggregateColumns(schema, o_.aggregates, name_));
    // Output schema from empty accumulators.
    arrow::FieldVector fields;
    for (size_t i = 0; i < key_indices_.size(); ++i)
      fields.push_back(schema.field(key_indices_[i]));
    auto ts_type = arrow::timestamp(arrow::TimeUnit::MILLI, "UTC");
    fields.push_back(arrow::field("window_start", ts_type));
    fields.push_back(arrow::field("window_end", ts_type));
    ARROW_ASSIGN_OR_RAISE(auto probe, MakeAccumulators());
    for (size_t i = 0; i < o_.aggregates.size(); ++i) {
      ARROW_ASSIGN_OR_RAISE(auto empty, probe[i]->Finalize({}));
      fields.push_back(arrow::field(o_.aggregates[i].output, empty->type()));
    }
    if (emits_updates_) fields.push_back(arrow::field("emit_kind", arrow::utf8()));
    std::set<std::string> names;
    for (const auto& f : fields) {
      if (!names.insert(f->name()).second) {
        return arrow::Status::Invalid(
            name_, ": output column '", f->name(),
            "' appears twice (a key or aggregate has the name of "
            "another output column: keys, window_start, window_end, "
            "aggregates, emit_kind)");
      }
    }
    output_schema_ = arrow::schema(std::move(fields));
    if (!time_windows_) {
      ARROW_ASSIGN_OR_RAISE(key_table_, KeyTable::Make(key_types_, true, exec_, pool_));
      ARROW_ASSIGN_OR_RAISE(slots_.accs, MakeAccumulators());
    }
    return arrow::Status::OK();
  }

  arrow::Result<std::vector<std::unique_ptr<Accumulator>>> MakeAccumulators() {
    std::vector<std::unique_ptr<Accumulator>> accs;
    for (size_t i = 0; i < o_.aggregates.size(); ++i) {
      int c = agg_indices_[i];
      auto acc = MakeAccumulator(
          o_.aggregates[i], c < 0 ? nullptr : input_schema_->field(c)->type(), pool_);
      if (!acc.ok()) return acc.status().WithMessage(name_, ": ", acc.status().message());
      accs.push_back(acc.MoveValueUnsafe());
    }
    // Hidden min/max of event time, for the bounds of count and global windows.
    if (!time_windows_ && o_.window.kind != WindowSpec::Kind::kSession &&
        time_index_ >= 0) {
      AggregateSpec mn{"min", o_.time_column, "", nullptr},
          mx{"max", o_.time_column, "", nullptr};
      ARROW_ASSIGN_OR_RAISE(auto a, MakeAccumulator(mn, arrow::int64(), pool_));
      ARROW_ASSIGN_OR_RAISE(auto b, MakeAccumulator(mx, arrow::int64(), pool_));
      accs.push_back(std::move(a));
      accs.push_back(std::move(b));
    }
    return accs;
  }

  arrow::Result<std::shared_ptr<arrow::Int64Array>> ConstantTimes(int64_t t, int64_t n,
                                                                  OperatorContext* ctx) {
    ARROW_ASSIGN_OR_RAISE(auto buf, arrow::AllocateBuffer(n * 8, ctx->pool));
    std::fill_n(reinterpret_cast<int64_t*>(buf->mutable_data()), n, t);
    return std::make_shared<arrow::Int64Array>(n, std::move(buf));
  }

  std::vector<std::shared_ptr<arrow::Array>> KeyColumns(
      const arrow::RecordBatch& b) const {
    std::vector<std::shared_ptr<arrow::Array>> keys;
    for (int i : key_indices_) keys.push_back(b.column(i));
    return keys;
  }

  // Feeds `rows` into `state` (group ids from its key table).
  arrow::Status ConsumeInto(GroupState* state, const arrow::RecordBatch& rows,
                            const std::shared_ptr<arrow::Int64Array>& times) {
    ARROW_ASSIGN_OR_RAISE(auto ids,
                          state->keys->Consume(KeyColumns(rows), rows.num_rows()));
    state->Resize(state->keys->num_groups());
    return ConsumeAggregates(state->accs, rows, ids->raw_values(), times);
  }

  arrow::Status ConsumeAggregates(std::vector<std::unique_ptr<Accumulator>>& accs,
                                  const arrow::RecordBatch& rows, const uint32_t* ids,
                                  const std::shared_ptr<arrow::Int64Array>& times) {
    for (size_t i = 0; i < o_.aggregates.size(); ++i) {
      int c = agg_indices_[i];
      auto st = accs[i]->Consume(c < 0 ? nullptr : rows.column(c), ids, rows.num_rows());
      if (!st.ok())
        return st.WithMessage(name_, ": ", o_.aggregates[i].ToString(), ": ",
                              st.message());
    }
    for (size_t i = o_.aggregates.size(); i < accs.size(); ++i) {
      ARROW_RETURN_NOT_OK(accs[i]->Consume(times, ids, rows.num_rows()));
    }
    return arrow::Status::OK();
  }

  arrow::Status EmitRows(std::vector<std::shared_ptr<arrow::Array>> keys,
                         const std::vector<int64_t>& starts,
                         const std::vector<int64_t>& ends,
                         const std::vector<uint8_t>* bounds_valid,
                         std::vector<std::unique_ptr<Accumulator>>& accs,
                         const std::vector<uint32_t>& groups, const char* kind,
                         Collector* out) {
    const int64_t n = static_cast<int64_t>(groups.size());
    if (n == 0) return arrow::Status::OK();
    std::vector<std::shared_ptr<arrow::Array>> columns = std::move(keys);
    auto ts_type = arrow::timestamp(arrow::TimeUnit::MILLI, "UTC");
    for (const auto* bounds : {&starts, &ends}) {
      arrow::TimestampBuilder b(ts_type, pool_);
      ARROW_RETURN_NOT_OK(b.Reserve(n));
      for (int64_t i = 0; i < n; ++i) {
        if (bounds_valid && !(*bounds_valid)[i]) {
          b.UnsafeAppendNull();
        } else {
          b.UnsafeAppend((*bounds)[i]);
        }
      }
      ARROW_ASSIGN_OR_RAISE(auto a, b.Finish());
      columns.push_back(std::move(a));
    }
    for (size_t i = 0; i < o_.aggregates.size(); ++i) {
      auto r = accs[i]->Finalize(groups);
      if (!r.ok())
        return r.status().WithMessage(name_, ": ", o_.aggregates[i].ToString(), ": ",
                                      r.status().message());
      columns.push_back(r.MoveValueUnsafe());
    }
    if (emits_updates_) {
      arrow::StringBuilder k(pool_);
      for (int64_t i = 0; i < n; ++i) ARROW_RETURN_NOT_OK(k.Append(kind));
      ARROW_ASSIGN_OR_RAISE(auto a, k.Finish());
      columns.push_back(std::move(a));
    }
    return out->Emit(arrow::RecordBatch::Make(output_schema_, n, std::move(columns)));
  }

  // --- tumbling / hopping / cumulate: panes --------------------------------

  struct WindowKey {
    int64_t end, start;
    bool operator<(const WindowKey& o) const {
      return end != o.end ? end < o.end : start < o.start;
    }
  };

  // The windows containing the pane that starts at `p`.
  void WindowsOfPane(int64_t p, std::vector<WindowKey>* out) const {
    out->clear();
    const auto& w = o_.window;
    switch (w.kind) {
      case WindowSpec::Kind::kTumbling:
        out->push_back({p + w.size_ms, p});
        break;
      case WindowSpec::Kind::kHopping: {
        int64_t last = FloorTo(p, w.slide_ms, w.offset_ms);
        for (int64_t s = last; s > p - w.size_ms; s -= w.slide_ms)
          out->push_back({s + w.size_ms, s});
        break;
      }
      case WindowSpec::Kind::kCumulate: {
        int64_t cs = FloorTo(p, w.size_ms, w.offset_ms);
        for (int64_t e = p + w.slide_ms; e <= cs + w.size_ms; e += w.slide_ms)
          out->push_back({e, cs});
        break;
      }
      default:
        break;
    }
  }

  int64_t LatestEndOfPane(int64_t p) const {
    std::vector<WindowKey> ws;
    WindowsOfPane(p, &ws);
    int64_t e = INT64_MIN;
    for (const auto& w : ws) e = std::max(e, w.end);
    return e;
  }

  bool Purged(int64_t window_end) const {
    return watermark_ != kMinWatermark &&
           window_end - 1 + o_.allowed_lateness_ms <= watermark_;
  }
  bool Fired(int64_t window_end) const {
    return watermark_ != kMinWatermark && window_end - 1 <= watermark_;
  }

  arrow::Status ProcessTimeWindows(const std::shared_ptr<arrow::RecordBatch>& batch,
                                   const arrow::Int64Array& times, OperatorContext* ctx,
                                   Collector* out) {
    const int64_t n = batch->num_rows();
    const int64_t* t = times.raw_values();
    // Pane of every row; rows of fully purged panes are late.
    std::vector<int64_t> distinct;
    std::vector<int32_t> row_pane(n);
    std::map<int64_t, int32_t> index;
    int64_t late = 0;
    for (int64_t i = 0; i < n; ++i) {
      int64_t p = FloorTo(t[i], pane_, o_.window.offset_ms);
      auto [it, inserted] = index.emplace(p, static_cast<int32_t>(distinct.size()));
      if (inserted) distinct.push_back(p);
      row_pane[i] = it->second;
    }
    std::vector<uint8_t> pane_late(distinct.size());
    for (size_t k = 0; k < distinct.size(); ++k) {
      pane_late[k] = !o_.processing_time && Purged(LatestEndOfPane(distinct[k]));
    }
    for (int64_t i = 0; i < n; ++i) late += pane_late[row_pane[i]];
    if (late > 0) {
      arrow::Int32Builder idx(pool_);
      for (int64_t i = 0; i < n; ++i) {
        if (pane_late[row_pane[i]])
          ARROW_RETURN_NOT_OK(idx.Append(static_cast<int32_t>(i)));
      }
      ARROW_ASSIGN_OR_RAISE(auto ix, idx.Finish());
      ARROW_ASSIGN_OR_RAISE(auto late_rows,
                            cp::Take(batch, ix, cp::TakeOptions::Defaults(), exec_));
      ARROW_RETURN_NOT_OK(out->EmitSide("late", late_rows.record_batch()));
    }
    // Fired, not yet purged windows that got rows: re-fired for those rows' keys.
    std::map<WindowKey, std::vector<std::shared_ptr<arrow::RecordBatch>>> refire;
    std::vector<WindowKey> ws;
    for (size_t k = 0; k < distinct.size(); ++k) {
      if (pane_late[k]) continue;
      const int64_t p = distinct[k];
      std::shared_ptr<arrow::RecordBatch> rows;
      std::shared_ptr<arrow::Int64Array> pane_times;
      if (distinct.size() == 1) {
        rows = batch;
      } else {
        arrow::Int32Builder idx(pool_);
        for (int64_t i = 0; i < n; ++i) {
          if (row_pane[i] == static_cast<int32_t>(k))
            ARROW_RETURN_NOT_OK(idx.Append(static_cast<int32_t>(i)));
        }
        ARROW_ASSIGN_OR_RAISE(auto ix, idx.Finish());
        ARROW_ASSIGN_OR_RAISE(
            auto taken, cp::Take(batch, ix, cp::TakeOptions::NoBoundsCheck(), exec_));
        rows = taken.record_batch();
      }
      auto it = panes_.find(p);
      if (it == panes_.end()) {
        GroupState state;
        ARROW_ASSIGN_OR_RAISE(state.keys,
                              KeyTable::Make(key_types_, false, exec_, pool_));
        ARROW_ASSIGN_OR_RAISE(state.accs, MakeAccumulators());
        it = panes_.emplace(p, std::move(state)).first;
        WindowsOfPane(p, &ws);
        for (const auto& w : ws) {
          if (Purged(w.end)) continue;
          if (Fired(w.end) && !o_.processing_time)
            continue;  // handled as a late refire below
          if (pending_.insert(w).second && o_.processing_time) {
            ctx->timers->RegisterProcessingTimeTimer(w.end);
          }
        }
      }
      ARROW_RETURN_NOT_OK(ConsumeInto(&it->second, *rows, pane_times));
      if (!o_.processing_time) {
        WindowsOfPane(p, &ws);
        for (const auto& w : ws) {
          if (Fired(w.end) && !Purged(w.end)) refire[w].push_back(rows);
        }
      }
    }
    for (const auto& [w, rows] : refire)
      ARROW_RETURN_NOT_OK(FireWindow(w, "late", out, &rows));
    return arrow::Status::OK();
  }

  // Emits window `w` for every key in it, or only for the keys of `only_rows`
  // (a late firing updates the keys that got late rows, as in Flink, and so
  // does not depend on which other keys share this instance).
  arrow::Status FireWindow(
      const WindowKey& w, const char* kind, Collector* out,
      const std::vector<std::shared_ptr<arrow::RecordBatch>>* only_rows = nullptr) {
    auto first = panes_.lower_bound(w.start);
    auto last = panes_.lower_bound(w.end);
    if (first == last) return arrow::Status::OK();
    GroupState* result;
    GroupState merged;
    if (std::next(first) == last && pane_ == w.end - w.start) {
      result = &first->second;  // one pane is the whole window: no merge
    } else {
      ARROW_ASSIGN_OR_RAISE(merged.keys, KeyTable::Make(key_types_, false, exec_, pool_));
      ARROW_ASSIGN_OR_RAISE(merged.accs, MakeAccumulators());
      for (auto it = first; it != last; ++it) {
        GroupState& pane = it->second;
        const uint32_t g = pane.keys->num_groups();
        if (g == 0) continue;
        std::shared_ptr<arrow::UInt32Array> mapping;
        if (pane.keys->keyed()) {
          ARROW_ASSIGN_OR_RAISE(auto uniques, pane.keys->AllKeys());
          ARROW_ASSIGN_OR_RAISE(mapping, merged.keys->Consume(uniques, g));
        } else {
          ARROW_ASSIGN_OR_RAISE(mapping, merged.keys->Consume({}, g));
        }
        merged.Resize(merged.keys->num_groups());
        for (size_t a = 0; a < merged.accs.size(); ++a) {
          ARROW_RETURN_NOT_OK(
              merged.accs[a]->MergeFrom(*pane.accs[a], mapping->raw_values()));
        }
      }
      result = &merged;
    }
    const uint32_t g = result->keys->num_groups();
    std::vector<uint32_t> groups(g);
    std::iota(groups.begin(), groups.end(), 0);
    ARROW_ASSIGN_OR_RAISE(auto keys, result->keys->AllKeys());
    if (only_rows && result->keys->keyed() && g > 0) {
      // Group ids below `wanted` in `filter` are the keys of `only_rows`.
      ARROW_ASSIGN_OR_RAISE(auto filter, KeyTable::Make(key_types_, false, exec_, pool_));
      for (const auto& rows : *only_rows)
        ARROW_RETURN_NOT_OK(
            filter->Consume(KeyColumns(*rows), rows->num_rows()).status());
      const uint32_t wanted = filter->num_groups();
      ARROW_ASSIGN_OR_RAISE(auto ids, filter->Consume(keys, g));
      groups.clear();
      arrow::Int32Builder take(pool_);
      for (uint32_t i = 0; i < g; ++i) {
        if (ids->Value(i) >= wanted) continue;
        groups.push_back(i);
        ARROW_RETURN_NOT_OK(take.Append(static_cast<int32_t>(i)));
      }
      ARROW_ASSIGN_OR_RAISE(auto indices, take.Finish());
      for (auto& k : keys) {
        ARROW_ASSIGN_OR_RAISE(auto taken,
                              cp::Take(*k, *indices, cp::TakeOptions::Defaults(), exec_));
        k = std::move(taken);
      }
    }
    const auto n = groups.size();
    std::vector<int64_t> starts(n, w.start), ends(n, w.end);
    return EmitRows(std::move(keys), starts, ends, nullptr, result->accs, groups, kind,
                    out);
  }

  arrow::Status FireTimeWindows(int64_t wm, OperatorContext*, Collector* out) {
    // Fire every pending window that ends at or before the watermark.
    while (!pending_.empty() && pending_.begin()->end - 1 <= wm) {
      WindowKey w = *pending_.begin();
      pending_.erase(pending_.begin());
      ARROW_RETURN_NOT_OK(FireWindow(w, emits_updates_ ? "on_time" : "final", out));
    }
    // Drop panes whose every window is purged.
    const int64_t horizon = o_.processing_time ? wm : watermark_;
    while (!panes_.empty()) {
      int64_t end = LatestEndOfPane(panes_.begin()->first);
      bool purge = o_.processing_time
                       ? end - 1 <= horizon
                       : (wm == kMaxWatermark || end - 1 + o_.allowed_lateness_ms <= wm);
      if (!purge) break;
      panes_.erase(panes_.begin());
    }
    return arrow::Status::OK();
  }

  arrow::Status EarlyFire(OperatorContext*, Collector* out) {
    for (const auto& w : pending_) ARROW_RETURN_NOT_OK(FireWindow(w, "early", out));
    return arrow::Status::OK();
  }

  // --- sessions --------------------------------------------------------------

  struct Session {
    int64_t end;  // exclusive: last event + gap
    uint32_t slot;
    bool fired = false;
  };

  uint32_t AllocSlot() {
    if (!free_slots_.empty()) {
      uint32_t s = free_slots_.back();
      free_slots_.pop_back();
      return s;
    }
    return next_slot_++;
  }

  arrow::Status ProcessSessions(const std::shared_ptr<arrow::RecordBatch>& batch,
                                const arrow::Int64Array& times, OperatorContext* ctx,
                                Collector* out) {
    const int64_t n = batch->num_rows();
    const int64_t gap = o_.window.gap_ms;
    ARROW_ASSIGN_OR_RAISE(auto key_ids, key_table_->Consume(KeyColumns(*batch), n));
    if (sessions_.size() < key_table_->num_groups())
      sessions_.resize(key_table_->num_groups());
    const uint32_t* kid = key_ids->raw_values();
    const int64_t* t = times.raw_values();
    std::vector<uint32_t> row_slot(n);
    std::vector<uint8_t> is_late(n, 0);
    std::vector<std::pair<uint32_t, uint32_t>>
        merges;  // (into, from), applied after consuming
    std::set<std::pair<uint32_t, int64_t>> refire;  // (key, session start)
    int64_t late = 0;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t ts = t[i];
      if (Purged(ts + gap)) {
        is_late[i] = 1;
        ++late;
        continue;
      }
      auto& by_start = sessions_[kid[i]];
      int64_t start = ts, end = ts + gap;
      // Merge every session that intersects [ts, ts + gap] (touching counts, as in
      // Flink). Sessions of a key are disjoint, so their ends grow with their
      // starts: walk back from the last session starting at or before `end`.
      auto it = by_start.upper_bound(end);
      // Common case: the row falls in (or extends) the session that starts at or
      // before it. Sessions are disjoint and not touching, so no earlier session
      // reaches its start, and none later starts before `end`: the session keeps
      // its start and slot; only its end may grow (the open_ends_ node is
      // re-keyed in place, no allocation).
      if (it != by_start.begin()) {
        auto prev = std::prev(it);
        Session& s = prev->second;
        if (prev->first <= ts && s.end >= ts) {
          if (end > s.end) {
            auto node = open_ends_.extract({s.end, kid[i], prev->first});
            node.value() = {end, kid[i], prev->first};
            open_ends_.insert(std::move(node));
            s.end = end;
          }
          if (s.fired) refire.insert({kid[i], prev->first});
          row_slot[i] = s.slot;
          continue;
        }
      }
      uint32_t slot = UINT32_MAX;
      bool was_fired = false;
      while (it != by_start.begin()) {
        auto prev = std::prev(it);
        if (prev->second.end < start) break;
        start = std::min(start, prev->first);
        end = std::max(end, prev->second.end);
        was_fired |= prev->second.fired;
        open_ends_.erase({prev->second.end, kid[i], prev->first});
        if (slot == UINT32_MAX) {
          slot = prev->second.slot;
        } else {
          merges.emplace_back(slot, prev->second.slot);
        }
        it = by_start.erase(prev);
      }
      if (slot == UINT32_MAX) slot = AllocSlot();
      by_start[start] = Session{end, slot, was_fired};
      open_ends_.insert({end, kid[i], start});
      if (was_fired) refire.insert({kid[i], start});
      row_slot[i] = slot;
    }
    if (late > 0) {
      arrow::Int32Builder idx(pool_);
      for (int64_t i = 0; i < n; ++i) {
        if (is_late[i]) ARROW_RETURN_NOT_OK(idx.Append(static_cast<int32_t>(i)));
      }
      ARROW_ASSIGN_OR_RAISE(auto ix, idx.Finish());
      ARROW_ASSIGN_OR_RAISE(auto late_rows,
                            cp::Take(batch, ix, cp::TakeOptions::Defaults(), exec_));
      ARROW_RETURN_NOT_OK(out->EmitSide("late", late_rows.record_batch()));
      // Late rows still need a slot for the vectorized consume: a scratch slot.
      uint32_t scratch = AllocSlot();
      for (int64_t i = 0; i < n; ++i) {
        if (is_late[i]) row_slot[i] = scratch;
      }
      merges.emplace_back(UINT32_MAX, scratch);  // reset and free after consuming
    }
    slots_.Resize(next_slot_);
    ARROW_RETURN_NOT_OK(ConsumeAggregates(slots_.accs, *batch, row_slot.data(), nullptr));
    for (const auto& [into, from] : merges) {
      if (into != UINT32_MAX) {
        for (auto& a : slots_.accs) a->MergeGroup(into, from);
      }
      for (auto& a : slots_.accs) a->ResetGroup(from);
      free_slots_.push_back(from);
    }
    if (!refire.empty()) {
      ARROW_RETURN_NOT_OK(EmitSessions({refire.begin(), refire.end()}, "late", out));
    }
    (void)ctx;
    return arrow::Status::OK();
  }

  arrow::Status EmitSessions(const std::vector<std::pair<uint32_t, int64_t>>& which,
                             const char* kind, Collector* out) {
    std::vector<uint32_t> keys, groups;
    std::vector<int64_t> starts, ends;
    std::set<std::pair<uint32_t, int64_t>> seen;
    for (const auto& [key, t] : which) {
      // The session of `key` that contains time `t` (sessions may have merged
      // since `t` was recorded as a start).
      auto& by_start = sessions_[key];
      auto it = by_start.upper_bound(t);
      if (it == by_start.begin()) continue;
      --it;
      if (it->second.end < t || !seen.insert({key, it->first}).second) continue;
      keys.push_back(key);
      groups.push_back(it->second.slot);
      starts.push_back(it->first);
      ends.push_back(it->second.end);
    }
    ARROW_ASSIGN_OR_RAISE(auto key_columns, key_table_->KeysOf(keys));
    return EmitRows(std::move(key_columns), starts, ends, nullptr, slots_.accs, groups,
                    kind, out);
  }

  arrow::Status FireSessions(int64_t wm, OperatorContext*, Collector* out) {
    std::vector<std::pair<uint32_t, int64_t>> fire;
    // open_ends_ holds every live session; fire the unfired ones that ended.
    for (auto it = open_ends_.begin();
         it != open_ends_.end() && std::get<0>(*it) - 1 <= wm; ++it) {
      auto& by_start = sessions_[std::get<1>(*it)];
      auto s = by_start.find(std::get<2>(*it));
      if (s != by_start.end() && !s->second.fired)
        fire.emplace_back(std::get<1>(*it), std::get<2>(*it));
    }
    if (!fire.empty()) {
      ARROW_RETURN_NOT_OK(EmitSessions(fire, emits_updates_ ? "on_time" : "final", out));
      for (const auto& [key, start] : fire) sessions_[key][start].fired = true;
    }
    // Purge sessions past their allowed lateness.
    while (!open_ends_.empty()) {
      auto [end, key, start] = *open_ends_.begin();
      if (!(wm == kMaxWatermark || end - 1 + o_.allowed_lateness_ms <= wm)) break;
      open_ends_.erase(open_ends_.begin());
      auto& by_start = sessions_[key];
      auto it = by_start.find(start);
      if (it != by_start.end()) {
        for (auto& a : slots_.accs) a->ResetGroup(it->second.slot);
        free_slots_.push_back(it->second.slot);
        by_start.erase(it);
      }
    }
    return arrow::Status::OK();
  }

  // --- count windows and global windows ---------------------------------------

  struct KeyWindows {
    uint32_t current = UINT32_MAX;  // slot receiving rows
    int64_t rows_in_current = 0;
    int64_t rows_total = 0;
    std::deque<uint32_t> panes;  // sliding count: completed panes, oldest first
    bool dirty = false;          // global: rows since the last firing
  };

  arrow::Status ProcessCountOrGlobal(const std::shared_ptr<arrow::RecordBatch>& batch,
                                     const arrow::Int64Array* times, OperatorContext*,
                                     Collector* out) {
    using K = WindowSpec::Kind;
    const auto& w = o_.window;
    const int64_t n = batch->num_rows();
    ARROW_ASSIGN_OR_RAISE(auto key_ids, key_table_->Consume(KeyColumns(*batch), n));
    if (per_key_.size() < key_table_->num_groups())
      per_key_.resize(key_table_->num_groups());
    const uint32_t* kid = key_ids->raw_values();
    std::vector<uint32_t> row_slot(n);
    std::shared_ptr<arrow::Int64Array> t =
        times ? std::make_shared<arrow::Int64Array>(times->data()) : nullptr;
    // Rows are consumed in segments that end at each firing, so a firing sees
    // exactly the rows before it, and a released slot is empty before reuse.
    int64_t consumed = 0;
    auto consume_to = [&](int64_t end) -> arrow::Status {
      if (end <= consumed) return arrow::Status::OK();
      slots_.Resize(next_slot_);
      auto rows = batch->Slice(consumed, end - consumed);
      std::shared_ptr<arrow::Int64Array> seg_t =
          t ? std::static_pointer_cast<arrow::Int64Array>(
                  t->Slice(consumed, end - consumed))
            : nullptr;
      ARROW_RETURN_NOT_OK(
          ConsumeAggregates(slots_.accs, *rows, row_slot.data() + consumed, seg_t));
      consumed = end;
      return arrow::Status::OK();
    };
    auto release = [&](uint32_t slot) {
      for (auto& a : slots_.accs) a->ResetGroup(slot);
      free_slots_.push_back(slot);
    };
    const int64_t pane_rows = w.kind == K::kCountSliding ? w.count_slide : w.count;
    for (int64_t i = 0; i < n; ++i) {
      KeyWindows& kw = per_key_[kid[i]];
      if (kw.current == UINT32_MAX) kw.current = AllocSlot();
      row_slot[i] = kw.current;
      ++kw.rows_in_current;
      ++kw.rows_total;
      kw.dirty = true;
      if (w.kind == K::kGlobal) {
        if (o_.trigger.every_rows > 0 &&
            kw.rows_in_current % o_.trigger.every_rows == 0) {
          ARROW_RETURN_NOT_OK(consume_to(i + 1));
          ARROW_RETURN_NOT_OK(EmitKeySlots(kid[i], {kw.current},
                                           o_.trigger.purge ? "final" : "update", out));
          kw.dirty = false;
          if (o_.trigger.purge) {
            release(kw.current);
            kw.current = UINT32_MAX;
            kw.rows_in_current = 0;
          }
        }
        continue;
      }
      if (kw.rows_in_current < pane_rows) continue;
      // A pane (sliding) or window (tumbling) is complete.
      ARROW_RETURN_NOT_OK(consume_to(i + 1));
      if (w.kind == K::kCountTumbling) {
        ARROW_RETURN_NOT_OK(EmitKeySlots(kid[i], {kw.current}, "final", out));
        release(kw.current);
      } else {
        kw.panes.push_back(kw.current);
        const size_t panes_per_window = static_cast<size_t>(w.count / w.count_slide);
        if (kw.panes.size() > panes_per_window) {
          release(kw.panes.front());
          kw.panes.pop_front();
        }
        ARROW_RETURN_NOT_OK(
            EmitKeySlots(kid[i], std::vector<uint32_t>(kw.panes.begin(), kw.panes.end()),
                         "final", out));
      }
      kw.current = UINT32_MAX;
      kw.rows_in_current = 0;
      kw.dirty = false;
    }
    ARROW_RETURN_NOT_OK(consume_to(n));
    return arrow::Status::OK();
  }

  // Emits one row for `key` aggregating `slots` (merged in a scratch slot when several).
  arrow::Status EmitKeySlots(uint32_t key, const std::vector<uint32_t>& slots,
                             const char* kind, Collector* out) {
    uint32_t result = slots.front();
    uint32_t scratch = UINT32_MAX;
    if (slots.size() > 1) {
      scratch = AllocSlot();
      slots_.Resize(next_slot_);
      for (uint32_t s : slots) {
        for (auto& a : slots_.accs) a->MergeGroup(scratch, s);
      }
      result = scratch;
    }
    ARROW_ASSIGN_OR_RAISE(auto keys, key_table_->KeysOf({key}));
    std::vector<int64_t> starts(1, 0), ends(1, 0);
    std::vector<uint8_t> valid(1, 0);
    if (time_index_ >= 0) {
      const size_t na = o_.aggregates.size();
      ARROW_ASSIGN_OR_RAISE(auto mn, slots_.accs[na]->Finalize({result}));
      ARROW_ASSIGN_OR_RAISE(auto mx, slots_.accs[na + 1]->Finalize({result}));
      if (mn->IsValid(0)) {
        starts[0] = static_cast<const arrow::Int64Array&>(*mn).Value(0);
        ends[0] = static_cast<const arrow::Int64Array&>(*mx).Value(0) + 1;
        valid[0] = 1;
      }
    }
    auto st =
        EmitRows(std::move(keys), starts, ends, &valid, slots_.accs, {result}, kind, out);
    if (scratch != UINT32_MAX) {
      for (auto& a : slots_.accs) a->ResetGroup(scratch);
      free_slots_.push_back(scratch);
    }
    return st;
  }

  arrow::Status FireDirtyKeys(OperatorContext*, Collector* out) {
    for (uint32_t k = 0; k < per_key_.size(); ++k) {
      KeyWindows& kw = per_key_[k];
      if (!kw.dirty || kw.current == UINT32_MAX) continue;
      ARROW_RETURN_NOT_OK(
          EmitKeySlots(k, {kw.current}, o_.trigger.purge ? "final" : "update", out));
      kw.dirty = false;
      if (o_.trigger.purge) {
        for (auto& a : slots_.accs) a->ResetGroup(kw.current);
        free_slots_.push_back(kw.current);
        kw.current = UINT32_MAX;
        kw.rows_in_current = 0;
      }
    }
    return arrow::Status::OK();
  }

  // End of input: global windows emit their final state. Incomplete count
  // windows are not emitted, as in Flink (a count window fires only when full).
  arrow::Status FireAllKeys(Collector* out) {
    using K = WindowSpec::Kind;
    for (uint32_t k = 0; k < per_key_.size(); ++k) {
      KeyWindows& kw = per_key_[k];
      if (o_.window.kind == K::kGlobal) {
        if (kw.dirty && kw.current != UINT32_MAX) {
          ARROW_RETURN_NOT_OK(EmitKeySlots(k, {kw.current}, "final", out));
          kw.dirty = false;
        }
      }
    }
    return arrow::Status::OK();
  }

  // --- checkpoints -------------------------------------------------------------

  size_t num_keys() const { return o_.keys.size(); }

  // One batch per pane: k0.., pane (start), the accumulator states of its keys.
  arrow::Status SnapshotPanes(SnapshotWriter* writer) {
    for (auto& [p, state] : panes_) {
      const uint32_t g = state.keys->num_groups();
      if (g == 0) continue;
      std::vector<uint32_t> groups(g);
      std::iota(groups.begin(), groups.end(), 0);
      StateColumns columns;
      ARROW_ASSIGN_OR_RAISE(auto keys, state.keys->AllKeys());
      columns.AddKeys(keys);
      ARROW_RETURN_NOT_OK(columns.AddConstant("pane", p, g, pool_));
      ARROW_RETURN_NOT_OK(columns.AddAccumulators(state.accs, groups));
      ARROW_ASSIGN_OR_RAISE(auto batch, columns.Finish(g));
      ARROW_RETURN_NOT_OK(
          writer->WriteKeyed("panes", batch, StateKeyColumns(num_keys())));
    }
    return arrow::Status::OK();
  }

  // One row per live session: k0.., start, end, fired, accumulator states.
  arrow::Status SnapshotSessions(SnapshotWriter* writer) {
    std::vector<uint32_t> keys, slots;
    std::vector<int64_t> starts, ends;
    arrow::BooleanBuilder fired(pool_);
    for (uint32_t k = 0; k < sessions_.size(); ++k) {
      for (const auto& [start, session] : sessions_[k]) {
        keys.push_back(k);
        slots.push_back(session.slot);
        starts.push_back(start);
        ends.push_back(session.end);
        ARROW_RETURN_NOT_OK(fired.Append(session.fired));
      }
    }
    if (keys.empty()) return arrow::Status::OK();
    const auto n = static_cast<int64_t>(keys.size());
    StateColumns columns;
    ARROW_ASSIGN_OR_RAISE(auto key_columns, key_table_->KeysOf(keys));
    columns.AddKeys(key_columns);
    ARROW_RETURN_NOT_OK(AddInt64Column(&columns, "start", starts));
    ARROW_RETURN_NOT_OK(AddInt64Column(&columns, "end", ends));
    ARROW_ASSIGN_OR_RAISE(auto fired_array, fired.Finish());
    columns.Add("fired", fired_array);
    ARROW_RETURN_NOT_OK(columns.AddAccumulators(slots_.accs, slots));
    ARROW_ASSIGN_OR_RAISE(auto batch, columns.Finish(n));
    return writer->WriteKeyed("sessions", batch, StateKeyColumns(num_keys()));
  }

  // One row per slot in use: k0.., position (-1: the slot receiving rows; i:
  // the i-th completed pane of a sliding count window, oldest first), the key's
  // rows_in_current, rows_total and dirty, accumulator states (with the hidden
  // event-time min/max).
  arrow::Status SnapshotCountWindows(SnapshotWriter* writer) {
    std::vector<uint32_t> keys, slots;
    std::vector<int64_t> positions, in_current, totals;
    arrow::BooleanBuilder dirty(pool_);
    for (uint32_t k = 0; k < per_key_.size(); ++k) {
      const KeyWindows& kw = per_key_[k];
      auto add = [&](uint32_t slot, int64_t position) {
        keys.push_back(k);
        slots.push_back(slot);
        positions.push_back(position);
        in_current.push_back(kw.rows_in_current);
        totals.push_back(kw.rows_total);
        return dirty.Append(kw.dirty);
      };
      if (kw.current != UINT32_MAX) ARROW_RETURN_NOT_OK(add(kw.current, -1));
      for (size_t i = 0; i < kw.panes.size(); ++i)
        ARROW_RETURN_NOT_OK(add(kw.panes[i], static_cast<int64_t>(i)));
    }
    if (keys.empty()) return arrow::Status::OK();
    const auto n = static_cast<int64_t>(keys.size());
    StateColumns columns;
    ARROW_ASSIGN_OR_RAISE(auto key_columns, key_table_->KeysOf(keys));
    columns.AddKeys(key_columns);
    ARROW_RETURN_NOT_OK(AddInt64Column(&columns, "position", positions));
    ARROW_RETURN_NOT_OK(AddInt64Column(&columns, "rows_in_current", in_current));
    ARROW_RETURN_NOT_OK(AddInt64Column(&columns, "rows_total", totals));
    ARROW_ASSIGN_OR_RAISE(auto dirty_array, dirty.Finish());
    columns.Add("dirty", dirty_array);
    ARROW_RETURN_NOT_OK(columns.AddAccumulators(slots_.accs, slots));
    ARROW_ASSIGN_OR_RAISE(auto batch, columns.Finish(n));
    return writer->WriteKeyed("count_windows", batch, StateKeyColumns(num_keys()));
  }

  arrow::Status AddInt64Column(StateColumns* columns, const char* name,
                               const std::vector<int64_t>& values) {
    arrow::Int64Builder b(pool_);
    ARROW_RETURN_NOT_OK(b.AppendValues(values));
    ARROW_ASSIGN_OR_RAISE(auto a, b.Finish());
    columns->Add(name, std::move(a));
    return arrow::Status::OK();
  }

  // Rebuilds the working state from the rows of the key groups this instance
  // owns (possibly written by several old instances).
  arrow::Status Restore(OperatorContext* ctx) {
    ARROW_ASSIGN_OR_RAISE(auto metas, ReadInstanceMeta(ctx->restore));
    // With aligned barriers every old instance saw the same watermark; the
    // minimum is the safe choice otherwise (no row is taken for late wrongly).
    watermark_ = MinMetaValue(metas, "watermark", kMinWatermark);
    fired_until_ = MinMetaValue(metas, "fired_until", kMinWatermark);
    rows_since_fire_ = SameInstanceValue(metas, ctx->instance_index, ctx->parallelism,
                                         "rows_since_fire", 0);
    auto schema = MetaSchema(metas, "input");
    if (!schema) return arrow::Status::OK();  // no old instance saw a row
    ARROW_RETURN_NOT_OK(Init(*schema, ctx));
    if (time_windows_) return RestorePanes(ctx);
    if (o_.window.kind == WindowSpec::Kind::kSession) return RestoreSessions(ctx);
    return RestoreCountWindows(ctx);
  }

  arrow::Status RestorePanes(OperatorContext* ctx) {
    ARROW_ASSIGN_OR_RAISE(auto batch, ReadKeyedTable(ctx->restore, "panes", pool_));
    if (!batch) return arrow::Status::OK();
    ARROW_ASSIGN_OR_RAISE(auto pane_column, StateInt64(*batch, "pane", name_));
    std::map<int64_t, std::vector<int64_t>> rows_of_pane;
    for (int64_t i = 0; i < batch->num_rows(); ++i)
      rows_of_pane[pane_column->Value(i)].push_back(i);
    for (const auto& [p, rows] : rows_of_pane) {
      std::shared_ptr<arrow::RecordBatch> part = batch;
      if (static_cast<int64_t>(rows.size()) != batch->num_rows()) {
        arrow::Int64Builder b(pool_);
        ARROW_RETURN_NOT_OK(b.AppendValues(rows));
        ARROW_ASSIGN_OR_RAISE(auto indices, b.Finish());
        ARROW_ASSIGN_OR_RAISE(
            auto taken, cp::Take(batch, indices, cp::TakeOptions::Defaults(), exec_));
        part = taken.record_batch();
      }
      auto it = panes_.find(p);
      if (it == panes_.end()) {
        GroupState state;
        ARROW_ASSIGN_OR_RAISE(state.keys,
                              KeyTable::Make(key_types_, false, exec_, pool_));
        ARROW_ASSIGN_OR_RAISE(state.accs, MakeAccumulators());
        it = panes_.emplace(p, std::move(state)).first;
      }
      ARROW_ASSIGN_OR_RAISE(auto keys, StateKeys(*part, num_keys(), name_));
      ARROW_ASSIGN_OR_RAISE(auto ids, it->second.keys->Consume(keys, part->num_rows()));
      it->second.Resize(it->second.keys->num_groups());
      ARROW_RETURN_NOT_OK(
          MergeAccumulators(*part, it->second.accs, ids->raw_values(), name_));
    }
    // The windows still to fire: those of the restored panes that had not fired
    // (event time: end - 1 > watermark; processing time: past the last fired
    // window end). Processing-time windows get their timers again.
    std::vector<WindowKey> ws;
    const int64_t horizon = o_.processing_time ? fired_until_ : watermark_;
    for (const auto& [p, state] : panes_) {
      WindowsOfPane(p, &ws);
      for (const auto& w : ws) {
        if (horizon != kMinWatermark && w.end - 1 <= horizon) continue;
        if (pending_.insert(w).second && o_.processing_time)
          ctx->timers->RegisterProcessingTimeTimer(w.end);
      }
    }
    return arrow::Status::OK();
  }

  arrow::Status RestoreSessions(OperatorContext* ctx) {
    ARROW_ASSIGN_OR_RAISE(auto batch, ReadKeyedTable(ctx->restore, "sessions", pool_));
    if (!batch) return arrow::Status::OK();
    const int64_t n = batch->num_rows();
    ARROW_ASSIGN_OR_RAISE(auto keys, StateKeys(*batch, num_keys(), name_));
    ARROW_ASSIGN_OR_RAISE(auto starts, StateInt64(*batch, "start", name_));
    ARROW_ASSIGN_OR_RAISE(auto ends, StateInt64(*batch, "end", name_));
    ARROW_ASSIGN_OR_RAISE(auto fired, StateBool(*batch, "fired", name_));
    ARROW_ASSIGN_OR_RAISE(auto key_ids, key_table_->Consume(keys, n));
    if (sessions_.size() < key_table_->num_groups())
      sessions_.resize(key_table_->num_groups());
    std::vector<uint32_t> row_slot(n);
    for (int64_t i = 0; i < n; ++i) {
      const uint32_t k = key_ids->Value(i);
      const int64_t start = starts->Value(i);
      auto& by_start = sessions_[k];
      auto it = by_start.find(start);
      if (it != by_start.end()) {
        // Only non-keyed sessions of several old instances can meet here.
        open_ends_.erase({it->second.end, k, start});
        it->second.end = std::max(it->second.end, ends->Value(i));
        it->second.fired = it->second.fired && fired->Value(i);
      } else {
        it =
            by_start.emplace(start, Session{ends->Value(i), AllocSlot(), fired->Value(i)})
                .first;
      }
      open_ends_.insert({it->second.end, k, start});
      row_slot[i] = it->second.slot;
    }
    slots_.Resize(next_slot_);
    return MergeAccumulators(*batch, slots_.accs, row_slot.data(), name_);
  }

  arrow::Status RestoreCountWindows(OperatorContext* ctx) {
    ARROW_ASSIGN_OR_RAISE(auto batch,
                          ReadKeyedTable(ctx->restore, "count_windows", pool_));
    if (!batch) return arrow::Status::OK();
    const int64_t n = batch->num_rows();
    ARROW_ASSIGN_OR_RAISE(auto keys, StateKeys(*batch, num_keys(), name_));
    ARROW_ASSIGN_OR_RAISE(auto positions, StateInt64(*batch, "position", name_));
    ARROW_ASSIGN_OR_RAISE(auto in_current, StateInt64(*batch, "rows_in_current", name_));
    ARROW_ASSIGN_OR_RAISE(auto totals, StateInt64(*batch, "rows_total", name_));
    ARROW_ASSIGN_OR_RAISE(auto dirty, StateBool(*batch, "dirty", name_));
    ARROW_ASSIGN_OR_RAISE(auto key_ids, key_table_->Consume(keys, n));
    if (per_key_.size() < key_table_->num_groups())
      per_key_.resize(key_table_->num_groups());
    std::vector<uint32_t> row_slot(n);
    std::map<uint32_t, std::map<int64_t, uint32_t>> panes;  // key -> position -> slot
    for (int64_t i = 0; i < n; ++i) {
      const uint32_t k = key_ids->Value(i);
      KeyWindows& kw = per_key_[k];
      if (positions->Value(i) < 0 && kw.current != UINT32_MAX) {
        row_slot[i] = kw.current;  // non-keyed state of several old instances
      } else {
        row_slot[i] = AllocSlot();
      }
      kw.rows_total = std::max(kw.rows_total, totals->Value(i));
      if (positions->Value(i) < 0) {
        kw.current = row_slot[i];
        kw.rows_in_current += in_current->Value(i);
        kw.dirty = kw.dirty || dirty->Value(i);
      } else {
        panes[k][positions->Value(i)] = row_slot[i];
      }
    }
    for (auto& [k, by_position] : panes) {
      for (const auto& [position, slot] : by_position) per_key_[k].panes.push_back(slot);
    }
    slots_.Resize(next_slot_);
    return MergeAccumulators(*batch, slots_.accs, row_slot.data(), name_);
  }

  const WindowAggregateOptions& o_;
  bool time_windows_ = false;
  bool emits_updates_ = false;
  int64_t pane_ = 0;
  std::string name_;
  arrow::MemoryPool* pool_ = nullptr;
  cp::ExecContext* exec_ = nullptr;
  std::shared_ptr<arrow::Schema> input_schema_, output_schema_;
  std::vector<int> key_indices_, agg_indices_;
  std::vector<std::shared_ptr<arrow::DataType>> key_types_;
  int time_index_ = -1;
  int64_t watermark_ = kMinWatermark;
  int64_t rows_since_fire_ = 0;
  int64_t fired_until_ = kMinWatermark;  // processing time: last fired window end - 1
  // time windows
  std::map<int64_t, GroupState> panes_;
  std::set<WindowKey> pending_;
  // sessions, count and global windows: persistent keys and slots
  std::unique_ptr<KeyTable> key_table_;
  GroupState slots_;
  uint32_t next_slot_ = 0;
  std::vector<uint32_t> free_slots_;
  std::vector<std::map<int64_t, Session>> sessions_;
  std::set<std::tuple<int64_t, uint32_t, int64_t>> open_ends_;  // (end, key, start)
  std::vector<KeyWindows> per_key_;
};

arrow::Status ValidateWindow(const PlanNode& node, const WindowAggregateOptions& o) {
  using K = WindowSpec::Kind;
  const auto& w = o.window;
  auto bad = [&](const std::string& why) {
    return arrow::Status::Invalid(node.name, ": invalid ", w.ToString(), ": ", why);
  };
  switch (w.kind) {
    case K::kTumbling:
      if (w.size_ms <= 0) return bad("size must be > 0");
      break;
    case K::kHopping:
      if (w.size_ms <= 0 || w.slide_ms <= 0) return bad("size and slide must be > 0");
      break;
    case K::kCumulate:
      if (w.size_ms <= 0 || w.slide_ms <= 0 || w.size_ms % w.slide_ms != 0) {
        return bad("max size must be a positive multiple of the step");
      }
      break;
    case K::kSession:
      if (w.gap_ms <= 0) return bad("gap must be > 0");
      break;
    case K::kCountTumbling:
      if (w.count <= 0) return bad("count must be > 0");
      break;
    case K::kCountSliding:
      if (w.count <= 0 || w.count_slide <= 0 || w.count % w.count_slide != 0) {
        return bad("count must be a positive multiple of the slide");
      }
      break;
    case K::kGlobal:
      if (o.trigger.every_rows <= 0 && o.trigger.every_ms <= 0) {
        return bad(
            "a global window needs a trigger (every_rows or every_ms); it would never "
            "fire");
      }
      break;
  }
  if (o.aggregates.empty())
    return arrow::Status::Invalid(node.name, ": no aggregates given");
  if (o.allowed_lateness_ms < 0)
    return arrow::Status::Invalid(node.name, ": negative allowed lateness");
  return arrow::Status::OK();
}

}  // namespace

void RegisterWindowAggregate(OperatorRegistry* registry) {
  ARROW_CHECK_OK(registry->AddOperator(
      "window_aggregate",
      [](const PlanNode& node, int, int) -> arrow::Result<std::unique_ptr<Operator>> {
        const auto& o = node.options_as<WindowAggregateOptions>();
        ARROW_RETURN_NOT_OK(ValidateWindow(node, o));
        return std::make_unique<WindowAggregateOperator>(o);
      }));
}

}  // namespace sabot
