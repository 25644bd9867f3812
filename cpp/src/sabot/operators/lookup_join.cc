#include "sabot/operators/lookup_join.h"

#include <arrow/array/builder_primitive.h>
#include <arrow/array/concatenate.h>
#include <arrow/array/util.h>
#include <arrow/compute/api_vector.h>
#include <arrow/util/logging.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <sstream>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "sabot/exec/operator.h"
#include "sabot/exec/partitioner.h"
#include "sabot/exec/timer_service.h"
#include "sabot/operators/row_key.h"

namespace sabot {

std::string LookupJoinOptions::ToString() const {
  std::ostringstream s;
  s << "lookup_join(" << (table ? table->ToString() : "no table") << ", on=";
  for (size_t i = 0; i < keys.size(); ++i) s << (i ? "," : "") << keys[i];
  s << ", how=" << JoinTypeName(type) << ", cache=" << cache_max_entries;
  if (cache_ttl_ms > 0) s << ", ttl=" << cache_ttl_ms << "ms";
  s << ", in_flight=" << max_in_flight << (ordered ? "" : ", unordered") << ")";
  return s.str();
}

arrow::Status LookupJoinOptions::Validate() const {
  if (!table) return arrow::Status::Invalid("lookup_join: no table given");
  if (keys.empty()) return arrow::Status::Invalid("lookup_join: no key columns given");
  if (keys.size() != table->key_columns().size()) {
    return arrow::Status::Invalid(
        "lookup_join: ", keys.size(), " stream key column(s) for the ",
        table->key_columns().size(), " key column(s) of ", table->ToString());
  }
  if (type != JoinType::kInner && type != JoinType::kLeft) {
    return arrow::Status::Invalid("lookup_join supports inner and left joins, not ",
                                  JoinTypeName(type));
  }
  if (cache_max_entries < 0 || cache_ttl_ms < 0 || max_in_flight < 1 || connections < 1 ||
      max_retries < 0 || retry_backoff_ms < 0) {
    return arrow::Status::Invalid(
        "lookup_join: cache_max_entries, cache_ttl_ms, max_retries and "
        "retry_backoff_ms must be >= 0, max_in_flight and connections >= 1");
  }
  if (on_error != "fail" && on_error != "dead_letter") {
    return arrow::Status::Invalid("lookup_join: on_error must be 'fail' or ",
                                  "'dead_letter', not '", on_error, "'");
  }
  return arrow::Status::OK();
}

namespace {

constexpr char kPendingInputTable[] = "pending_input";

// The table rows of one key: rows [offset, offset + length) of `batch` (the
// value columns of one query's result, shared by the keys of that query).
struct KeyRows {
  std::shared_ptr<arrow::RecordBatch> batch;
  int32_t offset = 0;
  int32_t length = 0;  // 0: the table has no row for the key
};

// One lookup query: distinct keys in, their rows out.
struct Request {
  std::vector<std::shared_ptr<arrow::Array>> keys;  // one array per key column
  std::vector<std::string> encoded;                 // the keys, encoded, in order
  // Written by the lookup thread before it hands the request back.
  arrow::Status status;
  RowKeyMap<KeyRows> rows;
  std::shared_ptr<arrow::Schema> table_schema;  // key columns, then values
  // Operator thread only.
  bool done = false;
};

// Where the table rows of one input row are: a cached run of rows, or the
// result of a request still to complete.
struct RowRef {
  const arrow::RecordBatch* batch = nullptr;
  int32_t offset = 0;
  int32_t length = 0;
  const Request* request = nullptr;
};

// An input batch waiting for lookups, or a control element (a watermark, an
// idle/active mark) waiting for the batches before it.
struct Entry {
  enum class Kind : uint8_t { kBatch, kWatermark, kIdle };
  Kind kind = Kind::kBatch;
  int64_t watermark = 0;  // kWatermark: the watermark; kIdle: 1 idle, 0 active
  bool is_control() const { return kind != Kind::kBatch; }
  std::shared_ptr<arrow::RecordBatch> input;
  EncodedKeys keys;
  std::vector<RowRef> refs;
  std::vector<std::shared_ptr<Request>> requests;
  std::vector<std::shared_ptr<arrow::RecordBatch>> pinned;  // batches refs point into
};

// Rows [offset, offset + length) of `batch` for one input row (batch null: none).
struct RowMatch {
  const arrow::RecordBatch* batch = nullptr;
  int32_t offset = 0;
  int32_t length = 0;
};

bool IsRetryable(const arrow::Status& st) {
  return st.IsIOError() && st.message().find("(retryable)") != std::string::npos;
}

class LookupJoin : public Operator {
 public:
  explicit LookupJoin(const LookupJoinOptions& options)
      : options_(options), stats_(options.stats) {}

  ~LookupJoin() override { StopThreads(); }

  arrow::Status Open(OperatorContext* ctx) override {
    ARROW_RETURN_NOT_OK(options_.Validate());
    ctx_ = ctx;
    name_ = ctx->operator_name;
    what_ = name_ + " (" + options_.table->ToString() + ")";
    notifier_ = ctx->async_notifier;
    for (int i = 0; i < options_.connections; ++i) {
      threads_.emplace_back([this] { LookupLoop(); });
    }
    if (ctx->restore != nullptr) {
      // Batches that were waiting for lookups when the checkpoint was taken;
      // the restored instances share them out.
      ARROW_ASSIGN_OR_RAISE(auto batches,
                            ctx->restore->ReadOperatorState(kPendingInputTable));
      for (size_t k = 0; k < batches.size(); ++k) {
        if (static_cast<int>(k % ctx->parallelism) != ctx->instance_index) continue;
        ARROW_RETURN_NOT_OK(Enqueue(batches[k], /*may_emit_now=*/false, nullptr));
      }
    }
    return arrow::Status::OK();
  }

  arrow::Status ProcessBatch(int, const std::shared_ptr<arrow::RecordBatch>& batch,
                             OperatorContext* ctx, Collector* out) override {
    ARROW_RETURN_NOT_OK(Enqueue(batch, /*may_emit_now=*/true, out));
    if (!notifier_) return Drain(out);  // no async wake-ups: work synchronously
    return arrow::Status::OK();
  }

  // Control elements wait for the batches before them: a watermark (or an
  // idle mark) must not overtake rows that arrived before it.
  arrow::Status OnWatermark(int64_t watermark, OperatorContext*,
                            Collector* out) override {
    if (entries_.empty()) return out->EmitWatermark(watermark);
    Entry e;
    e.kind = Entry::Kind::kWatermark;
    e.watermark = watermark;
    entries_.push_back(std::move(e));
    return arrow::Status::OK();
  }

  arrow::Status OnIdle(bool idle, OperatorContext*, Collector* out) override {
    if (entries_.empty()) return out->EmitIdle(idle);
    Entry e;
    e.kind = Entry::Kind::kIdle;
    e.watermark = idle ? 1 : 0;
    entries_.push_back(std::move(e));
    return arrow::Status::OK();
  }

  arrow::Status OnAsyncReady(OperatorContext*, Collector* out) override {
    ARROW_RETURN_NOT_OK(TakeCompletions());
    return EmitReady(out);
  }

  bool CanAcceptInput() const override {
    return queued_batches_ < options_.max_in_flight;
  }
  bool HasPendingWork() const override { return !entries_.empty(); }

  arrow::Status SnapshotState(SnapshotWriter* writer, OperatorContext*) override {
    // In-flight input is part of the checkpoint (its results go downstream
    // after the barrier); on restore it is looked up again.
    for (const auto& e : entries_) {
      if (!e.is_control()) {
        ARROW_RETURN_NOT_OK(writer->WriteOperatorState(kPendingInputTable, e.input));
      }
    }
    return arrow::Status::OK();
  }

  arrow::Status Close(OperatorContext*, Collector* out) override {
    // The runtime closes an asynchronous operator only when nothing is
    // pending; a driver without async wake-ups gets the results here.
    ARROW_RETURN_NOT_OK(Drain(out));
    StopThreads();
    return arrow::Status::OK();
  }

  std::vector<StateDescriptor> state_tables() const override {
    return {{kPendingInputTable, "list"}};
  }

 private:
  // --- input -----------------------------------------------------------------

  arrow::Status ResolveKeys(const arrow::Schema& schema) {
    ARROW_ASSIGN_OR_RAISE(key_indices_, ResolveKeyColumns(schema, options_.keys, name_));
    std::vector<std::shared_ptr<arrow::DataType>> types;
    for (size_t k = 0; k < key_indices_.size(); ++k) {
      const auto& type = schema.field(key_indices_[k])->type();
      ARROW_RETURN_NOT_OK(
          CheckRowKeyType(*type, name_ + " key column '" + options_.keys[k] + "'"));
      types.push_back(type);
    }
    std::lock_guard<std::mutex> lock(mutex_);
    key_types_ = std::move(types);
    return arrow::Status::OK();
  }

  // Looks the batch's keys up in the cache and queues a request for the rest.
  // Emits the batch at once when every key was cached and nothing is ahead of
  // it (`out` non-null); otherwise queues it.
  arrow::Status Enqueue(const std::shared_ptr<arrow::RecordBatch>& batch,
                        bool may_emit_now, Collector* out) {
    if (key_indices_.empty()) ARROW_RETURN_NOT_OK(ResolveKeys(*batch->schema()));
    Entry e;
    e.input = batch;
    std::vector<std::shared_ptr<arrow::Array>> key_columns;
    for (int k : key_indices_) key_columns.push_back(batch->column(k));
    ARROW_RETURN_NOT_OK(EncodeRowKeys(key_columns, &e.keys, name_));

    const int64_t n = batch->num_rows();
    const bool caching = options_.cache_max_entries > 0;
    ++tick_;
    const int64_t now = options_.cache_ttl_ms > 0 ? WallClockMillis() : 0;
    e.refs.resize(n);
    std::shared_ptr<Request> request;
    std::unordered_set<std::string_view> requested;
    std::vector<int64_t> request_rows;
    int64_t hits = 0, misses = 0, waits = 0;
    for (int64_t i = 0; i < n; ++i) {
      if (e.keys.has_null[i]) continue;  // never matches
      std::string_view key = e.keys.key(i);
      RowRef& ref = e.refs[i];
      if (caching) {
        auto it = cache_.find(key);
        if (it != cache_.end()) {
          if (options_.cache_ttl_ms > 0 &&
              now - it->second.loaded_ms > options_.cache_ttl_ms) {
            EraseCached(it);
          } else {
            ++hits;
            it->second.used = tick_;
            ref.batch = it->second.rows.batch.get();
            ref.offset = it->second.rows.offset;
            ref.length = it->second.rows.length;
            continue;
          }
        }
      }
      auto flying = inflight_.find(key);
      if (flying != inflight_.end()) {
        ++waits;
        ref.request = flying->second.get();
        AddRequest(&e, flying->second);
        continue;
      }
      if (!request) request = std::make_shared<Request>();
      ref.request = request.get();
      if (requested.insert(key).second) {
        ++misses;
        request_rows.push_back(i);
      } else {
        ++waits;  // the key's first row in this batch started its lookup
      }
    }
    stats_->cache_hits.fetch_add(hits + waits, std::memory_order_relaxed);
    stats_->cache_misses.fetch_add(misses, std::memory_order_relaxed);
    stats_->inflight_waits.fetch_add(waits, std::memory_order_relaxed);

    if (!request && !value_schema_ && e.requests.empty()) {
      // Nothing to look up, but the table's columns are not known yet: an
      // empty request connects and describes the table.
      request = std::make_shared<Request>();
    }
    if (request) {
      ARROW_RETURN_NOT_OK(FillRequest(request.get(), key_columns, request_rows, e.keys));
      for (const auto& key : request->encoded) inflight_.emplace(key, request);
      AddRequest(&e, request);
      Submit(request);
    }

    if (may_emit_now && out != nullptr && e.requests.empty() && entries_.empty()) {
      // The common cached case: join straight from the cache.
      return EmitJoined(e, out);
    }
    // Pin what the cached refs point into: eviction may drop it meanwhile.
    std::unordered_set<const arrow::RecordBatch*> pinned;
    for (int64_t i = 0; i < n; ++i) {
      const RowRef& ref = e.refs[i];
      if (ref.batch != nullptr && pinned.insert(ref.batch).second) {
        auto it = cache_.find(e.keys.key(i));
        e.pinned.push_back(it->second.rows.batch);
      }
    }
    entries_.push_back(std::move(e));
    ++queued_batches_;
    return arrow::Status::OK();
  }

  static void AddRequest(Entry* e, const std::shared_ptr<Request>& r) {
    for (const auto& have : e->requests) {
      if (have == r) return;
    }
    e->requests.push_back(r);
  }

  arrow::Status FillRequest(Request* r,
                            const std::vector<std::shared_ptr<arrow::Array>>& key_columns,
                            const std::vector<int64_t>& rows, const EncodedKeys& keys) {
    arrow::Int64Builder indices(ctx_->pool);
    ARROW_RETURN_NOT_OK(indices.AppendValues(rows));
    std::shared_ptr<arrow::Array> take;
    ARROW_RETURN_NOT_OK(indices.Finish(&take));
    arrow::compute::ExecContext exec(ctx_->pool);
    for (const auto& column : key_columns) {
      ARROW_ASSIGN_OR_RAISE(
          auto keys_of_rows,
          arrow::compute::Take(*column, *take,
                               arrow::compute::TakeOptions::NoBoundsCheck(), &exec));
      r->keys.push_back(std::move(keys_of_rows));
    }
    r->encoded.reserve(rows.size());
    for (int64_t i : rows) r->encoded.emplace_back(keys.key(i));
    return arrow::Status::OK();
  }

  void Submit(std::shared_ptr<Request> r) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.push_back(std::move(r));
    }
    work_cv_.notify_one();
  }

  // --- completions -------------------------------------------------------------

  arrow::Status TakeCompletions() {
    std::vector<std::shared_ptr<Request>> done;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done.swap(completed_);
    }
    for (auto& r : done) {
      r->done = true;
      for (const auto& key : r->encoded) {
        auto it = inflight_.find(key);
        if (it != inflight_.end() && it->second == r) inflight_.erase(it);
      }
      if (!r->status.ok()) continue;
      if (!value_schema_ && r->table_schema) {
        const int num_keys = static_cast<int>(options_.keys.size());
        arrow::FieldVector values(r->table_schema->fields().begin() + num_keys,
                                  r->table_schema->fields().end());
        value_schema_ = arrow::schema(std::move(values));
      }
      if (options_.cache_max_entries > 0) {
        const int64_t now = WallClockMillis();
        for (auto& [key, rows] : r->rows) Cache(key, rows, now);
      }
    }
    return arrow::Status::OK();
  }

  // Blocks until every queued entry is emitted (drivers without async wake-ups).
  arrow::Status Drain(Collector* out) {
    for (;;) {
      ARROW_RETURN_NOT_OK(TakeCompletions());
      ARROW_RETURN_NOT_OK(EmitReady(out));
      if (entries_.empty()) return arrow::Status::OK();
      std::unique_lock<std::mutex> lock(mutex_);
      done_cv_.wait(lock, [this] { return !completed_.empty(); });
    }
  }

  static bool Ready(const Entry& e) {
    for (const auto& r : e.requests) {
      if (!r->done) return false;
    }
    return true;
  }

  arrow::Status EmitEntry(Entry& e, Collector* out) {
    if (e.kind == Entry::Kind::kWatermark) return out->EmitWatermark(e.watermark);
    if (e.kind == Entry::Kind::kIdle) return out->EmitIdle(e.watermark != 0);
    --queued_batches_;
    for (const auto& r : e.requests) {
      if (!r->status.ok()) return Failed(e, r->status, out);
    }
    return EmitJoined(e, out);
  }

  arrow::Status EmitReady(Collector* out) {
    if (options_.ordered) {
      while (!entries_.empty() && Ready(entries_.front())) {
        Entry e = std::move(entries_.front());
        entries_.pop_front();
        ARROW_RETURN_NOT_OK(EmitEntry(e, out));
      }
      return arrow::Status::OK();
    }
    // Unordered: any completed batch, but none past a queued control element.
    for (auto it = entries_.begin(); it != entries_.end();) {
      if (it->is_control() && it != entries_.begin()) break;
      if (!Ready(*it)) {
        ++it;
        continue;
      }
      Entry e = std::move(*it);
      it = entries_.erase(it);
      ARROW_RETURN_NOT_OK(EmitEntry(e, out));
    }
    return arrow::Status::OK();
  }

  arrow::Status Failed(const Entry& e, const arrow::Status& st, Collector* out) {
    if (options_.on_error != "dead_letter") return st;
    stats_->failed_batches.fetch_add(1, std::memory_order_relaxed);
    arrow::StringBuilder error(ctx_->pool);
    for (int64_t i = 0; i < e.input->num_rows(); ++i) {
      ARROW_RETURN_NOT_OK(error.Append(st.ToString()));
    }
    std::shared_ptr<arrow::Array> column;
    ARROW_RETURN_NOT_OK(error.Finish(&column));
    ARROW_ASSIGN_OR_RAISE(
        auto rows, e.input->AddColumn(e.input->num_columns(),
                                      arrow::field("error", arrow::utf8()), column));
    return out->EmitSide(kLookupErrorsTag, std::move(rows));
  }

  // --- output --------------------------------------------------------------------

  arrow::Status EmitJoined(const Entry& e, Collector* out) {
    const int64_t n = e.input->num_rows();
    std::vector<RowMatch> matches(n);
    for (int64_t i = 0; i < n; ++i) {
      const RowRef& ref = e.refs[i];
      if (ref.request != nullptr) {
        auto it = ref.request->rows.find(e.keys.key(i));
        if (it != ref.request->rows.end()) {
          matches[i] = {it->second.batch.get(), it->second.offset, it->second.length};
        }
      } else if (ref.batch != nullptr) {
        matches[i] = {ref.batch, ref.offset, ref.length};
      }
    }
    ARROW_ASSIGN_OR_RAISE(auto joined, Join(*e.input, matches));
    if (joined->num_rows() == 0) return arrow::Status::OK();
    return out->Emit(std::move(joined));
  }

  arrow::Result<std::shared_ptr<arrow::RecordBatch>> Join(
      const arrow::RecordBatch& input, const std::vector<RowMatch>& matches) {
    if (!output_schema_) {
      if (!value_schema_) {
        return arrow::Status::Invalid(what_, ": the table's columns are not known yet");
      }
      ARROW_ASSIGN_OR_RAISE(output_schema_,
                            JoinOutputSchema(*input.schema(), *value_schema_, {}, name_));
    }
    const bool left_join = options_.type == JoinType::kLeft;
    const int64_t n = input.num_rows();
    // Output row -> (value batch, row), chunk -1 for the nulls of a left join.
    std::vector<int64_t> left;
    std::vector<int32_t> right_chunk;
    std::vector<int64_t> right_row;
    left.reserve(n);
    right_chunk.reserve(n);
    right_row.reserve(n);
    std::vector<const arrow::RecordBatch*> chunks;  // distinct value batches
    std::vector<int64_t> chunk_rows;                // rows taken from each
    std::unordered_map<const arrow::RecordBatch*, int32_t> chunk_of;
    const arrow::RecordBatch* last = nullptr;
    int32_t last_chunk = -1;
    bool identity = true;  // every input row exactly once, in order
    for (int64_t i = 0; i < n; ++i) {
      const RowMatch& m = matches[i];
      if (m.batch == nullptr || m.length == 0) {
        if (left_join) {
          left.push_back(i);
          right_chunk.push_back(-1);
          right_row.push_back(0);
        } else {
          identity = false;
        }
        continue;
      }
      if (m.batch != last) {
        last = m.batch;
        auto [it, inserted] =
            chunk_of.try_emplace(m.batch, static_cast<int32_t>(chunks.size()));
        if (inserted) {
          chunks.push_back(m.batch);
          chunk_rows.push_back(0);
        }
        last_chunk = it->second;
      }
      if (m.length != 1) identity = false;
      chunk_rows[last_chunk] += m.length;
      for (int32_t j = 0; j < m.length; ++j) {
        left.push_back(i);
        right_chunk.push_back(last_chunk);
        right_row.push_back(m.offset + j);
      }
    }
    const int64_t out_rows = static_cast<int64_t>(left.size());
    arrow::compute::ExecContext exec(ctx_->pool);
    arrow::ArrayVector columns;
    if (identity && out_rows == n) {
      columns = input.columns();
    } else {
      arrow::Int64Builder lb(ctx_->pool);
      ARROW_RETURN_NOT_OK(lb.AppendValues(left));
      std::shared_ptr<arrow::Array> left_indices;
      ARROW_RETURN_NOT_OK(lb.Finish(&left_indices));
      for (const auto& column : input.columns()) {
        ARROW_ASSIGN_OR_RAISE(
            auto taken,
            arrow::compute::Take(*column, *left_indices,
                                 arrow::compute::TakeOptions::NoBoundsCheck(), &exec));
        columns.push_back(std::move(taken));
      }
    }
    // The right columns. One value batch: one Take. Several: a Take per batch
    // of just the rows needed, concatenated, then one Take into output order;
    // the cost is proportional to the output, however large the batches are
    // (a Take over a chunked array would concatenate every chunk first).
    const auto make_indices = [&](const std::function<int64_t(int64_t)>& position)
        -> arrow::Result<std::shared_ptr<arrow::Array>> {
      arrow::Int64Builder b(ctx_->pool);
      ARROW_RETURN_NOT_OK(b.Reserve(out_rows));
      for (int64_t p = 0; p < out_rows; ++p) {
        if (right_chunk[p] < 0) {
          b.UnsafeAppendNull();
        } else {
          b.UnsafeAppend(position(p));
        }
      }
      std::shared_ptr<arrow::Array> out;
      ARROW_RETURN_NOT_OK(b.Finish(&out));
      return out;
    };
    std::shared_ptr<arrow::Array> order;  // output row -> row of the gathered rows
    std::vector<std::shared_ptr<arrow::Array>> per_chunk;  // rows needed per batch
    if (chunks.size() == 1) {
      ARROW_ASSIGN_OR_RAISE(order, make_indices([&](int64_t p) { return right_row[p]; }));
    } else if (chunks.size() > 1) {
      std::vector<int64_t> offset(chunks.size(), 0), filled(chunks.size(), 0);
      for (size_t c = 1; c < chunks.size(); ++c)
        offset[c] = offset[c - 1] + chunk_rows[c - 1];
      std::vector<arrow::Int64Builder> rows(chunks.size());
      for (size_t c = 0; c < chunks.size(); ++c) {
        ARROW_RETURN_NOT_OK(rows[c].Reserve(chunk_rows[c]));
      }
      std::vector<int64_t> position(out_rows, 0);
      for (int64_t p = 0; p < out_rows; ++p) {
        const int32_t c = right_chunk[p];
        if (c < 0) continue;
        rows[c].UnsafeAppend(right_row[p]);
        position[p] = offset[c] + filled[c]++;
      }
      for (auto& b : rows) {
        std::shared_ptr<arrow::Array> a;
        ARROW_RETURN_NOT_OK(b.Finish(&a));
        per_chunk.push_back(std::move(a));
      }
      ARROW_ASSIGN_OR_RAISE(order, make_indices([&](int64_t p) { return position[p]; }));
    }
    for (int c = 0; c < value_schema_->num_fields(); ++c) {
      const auto& type = value_schema_->field(c)->type();
      if (chunks.empty()) {
        ARROW_ASSIGN_OR_RAISE(auto nulls,
                              arrow::MakeArrayOfNull(type, out_rows, ctx_->pool));
        columns.push_back(std::move(nulls));
        continue;
      }
      std::shared_ptr<arrow::Array> values;
      if (chunks.size() == 1) {
        values = chunks[0]->column(c);
      } else {
        arrow::ArrayVector parts;
        for (size_t k = 0; k < chunks.size(); ++k) {
          ARROW_ASSIGN_OR_RAISE(
              auto part,
              arrow::compute::Take(*chunks[k]->column(c), *per_chunk[k],
                                   arrow::compute::TakeOptions::NoBoundsCheck(), &exec));
          parts.push_back(std::move(part));
        }
        ARROW_ASSIGN_OR_RAISE(values, arrow::Concatenate(parts, ctx_->pool));
      }
      ARROW_ASSIGN_OR_RAISE(
          auto taken,
          arrow::compute::Take(*values, *order, arrow::compute::TakeOptions::Defaults(),
                               &exec));
      columns.push_back(std::move(taken));
    }
    return arrow::RecordBatch::Make(output_schema_, out_rows, std::move(columns));
  }

  // --- cache -------------------------------------------------------------------

  // LRU at batch granularity: a hit stamps the entry with the number of the
  // current batch (no list to splice: one store per hit); when the cache
  // overflows, the least recently stamped tenth is evicted at once, so the
  // scan that finds them costs O(1) amortized per insert.
  struct CacheEntry {
    KeyRows rows;
    int64_t loaded_ms = 0;
    uint64_t used = 0;
  };

  void Cache(const std::string& key, const KeyRows& rows, int64_t now) {
    auto [it, inserted] = cache_.try_emplace(key);
    it->second.rows = rows;
    it->second.loaded_ms = now;
    it->second.used = tick_;
    if (inserted) stats_->cache_entries.fetch_add(1, std::memory_order_relaxed);
    if (static_cast<int64_t>(cache_.size()) > options_.cache_max_entries) Evict();
  }

  void Evict() {
    const int64_t max = options_.cache_max_entries;
    const size_t target = static_cast<size_t>(std::max<int64_t>(max - max / 10, 0));
    if (cache_.size() <= target) return;
    const size_t excess = cache_.size() - target;
    std::vector<uint64_t> stamps;
    stamps.reserve(cache_.size());
    for (const auto& [key, entry] : cache_) stamps.push_back(entry.used);
    std::nth_element(stamps.begin(), stamps.begin() + (excess - 1), stamps.end());
    const uint64_t cutoff = stamps[excess - 1];
    size_t removed = 0;
    for (auto it = cache_.begin(); it != cache_.end() && removed < excess;) {
      if (it->second.used <= cutoff) {
        it = cache_.erase(it);
        ++removed;
      } else {
        ++it;
      }
    }
    stats_->cache_entries.fetch_sub(static_cast<int64_t>(removed),
                                    std::memory_order_relaxed);
    stats_->cache_evictions.fetch_add(static_cast<int64_t>(removed),
                                      std::memory_order_relaxed);
  }

  void EraseCached(RowKeyMap<CacheEntry>::iterator it) {
    cache_.erase(it);
    stats_->cache_entries.fetch_sub(1, std::memory_order_relaxed);
  }

  // --- lookup threads ---------------------------------------------------------------

  void LookupLoop() {
    std::unique_ptr<LookupClient> client;
    std::shared_ptr<arrow::Schema> table_schema;
    bool types_checked = false;
    for (;;) {
      std::shared_ptr<Request> r;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        work_cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
        if (stop_) break;
        r = std::move(queue_.front());
        queue_.pop_front();
      }
      Execute(r.get(), &client, &table_schema, &types_checked);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        completed_.push_back(std::move(r));
      }
      done_cv_.notify_all();
      if (notifier_) notifier_->Notify();
    }
    SetActiveClient(client.get(), nullptr);
  }

  void SetActiveClient(LookupClient* old_client, LookupClient* new_client) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (old_client) active_clients_.erase(old_client);
    if (new_client) active_clients_.insert(new_client);
  }

  void Execute(Request* r, std::unique_ptr<LookupClient>* client,
               std::shared_ptr<arrow::Schema>* table_schema, bool* types_checked) {
    int64_t backoff = options_.retry_backoff_ms;
    for (int attempt = 0;; ++attempt) {
      arrow::Status st = Attempt(r, client, table_schema, types_checked);
      if (st.ok()) return;
      SetActiveClient(client->get(), nullptr);
      client->reset();
      const bool retry = IsRetryable(st) && attempt < options_.max_retries;
      if (!retry) {
        r->status = attempt > 0 ? st.WithMessage(st.message(), "; gave up after ",
                                                 attempt, " retries")
                                : st;
        return;
      }
      stats_->retries.fetch_add(1, std::memory_order_relaxed);
      std::unique_lock<std::mutex> lock(mutex_);
      if (work_cv_.wait_for(lock, std::chrono::milliseconds(backoff),
                            [this] { return stop_; })) {
        r->status = st;
        return;
      }
      backoff *= 2;
    }
  }

  arrow::Status Attempt(Request* r, std::unique_ptr<LookupClient>* client,
                        std::shared_ptr<arrow::Schema>* table_schema,
                        bool* types_checked) {
    if (!*client) {
      ARROW_ASSIGN_OR_RAISE(*client, options_.table->MakeClient(ctx_->pool));
      SetActiveClient(nullptr, client->get());
      ARROW_ASSIGN_OR_RAISE(*table_schema, (*client)->Connect());
      *types_checked = false;
    }
    if (!*types_checked) {
      std::vector<std::shared_ptr<arrow::DataType>> types;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        types = key_types_;
      }
      ARROW_RETURN_NOT_OK((*client)->CheckKeyTypes(types, options_.keys));
      *types_checked = true;
    }
    r->table_schema = *table_schema;
    if (r->encoded.empty()) return arrow::Status::OK();
    const int64_t start = std::chrono::duration_cast<std::chrono::nanoseconds>(
                              std::chrono::steady_clock::now().time_since_epoch())
                              .count();
    ARROW_ASSIGN_OR_RAISE(auto result, (*client)->Lookup(r->keys));
    const int64_t took = std::chrono::duration_cast<std::chrono::nanoseconds>(
                             std::chrono::steady_clock::now().time_since_epoch())
                             .count() -
                         start;
    stats_->queries.fetch_add(1, std::memory_order_relaxed);
    stats_->keys_queried.fetch_add(static_cast<int64_t>(r->encoded.size()),
                                   std::memory_order_relaxed);
    stats_->rows_fetched.fetch_add(result->num_rows(), std::memory_order_relaxed);
    stats_->query_ns.fetch_add(took, std::memory_order_relaxed);
    return GroupByKey(r, *result);
  }

  // Orders the result rows by requested key (each key's rows contiguous) and
  // records where each key's rows are. Runs on the lookup thread.
  arrow::Status GroupByKey(Request* r, const arrow::RecordBatch& result) {
    const int num_keys = static_cast<int>(options_.keys.size());
    std::vector<std::shared_ptr<arrow::Array>> key_columns;
    for (int k = 0; k < num_keys; ++k) key_columns.push_back(result.column(k));
    EncodedKeys result_keys;
    ARROW_RETURN_NOT_OK(EncodeRowKeys(key_columns, &result_keys, what_));
    const int64_t n = result.num_rows();
    // Rows of each key, in result order: head/tail of a chain through `next`.
    std::unordered_map<std::string_view, std::pair<int64_t, int64_t>> chains;
    std::vector<int64_t> next(n, -1);
    for (int64_t i = 0; i < n; ++i) {
      auto [it, inserted] = chains.try_emplace(result_keys.key(i), i, i);
      if (!inserted) {
        next[it->second.second] = i;
        it->second.second = i;
      }
    }
    arrow::Int64Builder take(ctx_->pool);
    ARROW_RETURN_NOT_OK(take.Reserve(n));
    std::vector<std::pair<int32_t, int32_t>> spans(r->encoded.size());
    for (size_t k = 0; k < r->encoded.size(); ++k) {
      const int32_t offset = static_cast<int32_t>(take.length());
      auto it = chains.find(r->encoded[k]);
      if (it != chains.end()) {
        for (int64_t i = it->second.first; i >= 0; i = next[i]) {
          ARROW_RETURN_NOT_OK(take.Append(i));
        }
      }
      spans[k] = {offset, static_cast<int32_t>(take.length()) - offset};
    }
    std::shared_ptr<arrow::Array> indices;
    ARROW_RETURN_NOT_OK(take.Finish(&indices));
    std::vector<int> value_columns;
    for (int c = num_keys; c < result.num_columns(); ++c) value_columns.push_back(c);
    ARROW_ASSIGN_OR_RAISE(auto values, result.SelectColumns(value_columns));
    arrow::compute::ExecContext exec(ctx_->pool);
    ARROW_ASSIGN_OR_RAISE(
        arrow::Datum taken,
        arrow::compute::Take(values, indices,
                             arrow::compute::TakeOptions::NoBoundsCheck(), &exec));
    auto batch = taken.record_batch();
    r->rows.reserve(r->encoded.size());
    for (size_t k = 0; k < r->encoded.size(); ++k) {
      r->rows.emplace(r->encoded[k], KeyRows{batch, spans[k].first, spans[k].second});
    }
    return arrow::Status::OK();
  }

  void StopThreads() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stop_ && threads_.empty()) return;
      stop_ = true;
      for (auto* c : active_clients_) c->Cancel();
    }
    work_cv_.notify_all();
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
    threads_.clear();
  }

  LookupJoinOptions options_;
  std::shared_ptr<LookupJoinStats> stats_;
  OperatorContext* ctx_ = nullptr;
  std::string name_;
  std::string what_;
  std::shared_ptr<AsyncNotifier> notifier_;

  // Operator thread only.
  std::vector<int> key_indices_;
  std::shared_ptr<arrow::Schema> value_schema_;
  std::shared_ptr<arrow::Schema> output_schema_;
  std::deque<Entry> entries_;
  int queued_batches_ = 0;
  RowKeyMap<CacheEntry> cache_;
  uint64_t tick_ = 0;  // input batches seen: the cache's clock
  RowKeyMap<std::shared_ptr<Request>> inflight_;

  // Shared with the lookup threads, under mutex_.
  std::mutex mutex_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  std::deque<std::shared_ptr<Request>> queue_;
  std::vector<std::shared_ptr<Request>> completed_;
  std::vector<std::shared_ptr<arrow::DataType>> key_types_;
  std::unordered_set<LookupClient*> active_clients_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace

void RegisterLookupJoin(OperatorRegistry* registry) {
  ARROW_CHECK_OK(registry->AddOperator(
      "lookup_join",
      [](const PlanNode& node, int, int) -> arrow::Result<std::unique_ptr<Operator>> {
        const auto& options = node.options_as<LookupJoinOptions>();
        ARROW_RETURN_NOT_OK(options.Validate());
        return std::make_unique<LookupJoin>(options);
      }));
}

}  // namespace sabot
