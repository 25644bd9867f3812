// The regular join: per side, the retained input batches plus per-row arrays
// (key group, chain link, match count, liveness, write time, row hash). One
// KeyTable shared by both sides maps key values to dense group ids; each side
// keeps, per group, the head of a chain of its rows with that key (newest
// first). An incoming batch gets its group ids in one vectorized call, then
// each row walks the other side's chain of its group; the result rows are
// gathered column by column from the retained batches (typed copies for
// fixed-width and string columns). Deleted and expired rows are only marked
// dead; a side is compacted (live rows copied into new batches, chains
// rebuilt) once dead rows outnumber live ones.
#include "sabot/operators/regular_join.h"

#include <arrow/array/concatenate.h>
#include <arrow/array/util.h>
#include <arrow/builder.h>
#include <arrow/compare.h>
#include <arrow/record_batch.h>
#include <arrow/util/bit_util.h>
#include <arrow/util/logging.h>

#include <algorithm>
#include <cstring>

#include "sabot/exec/partitioner.h"
#include "sabot/exec/stream_element.h"
#include "sabot/operators/bound_expression.h"
#include "sabot/operators/changelog.h"
#include "sabot/operators/key_table.h"
#include "sabot/operators/row_gather.h"

namespace sabot {

std::string RegularJoinOptions::ToString() const {
  std::string s = std::string("regular_join(") + JoinTypeName(type) + ", " +
                  JoinKeysToString(left_keys, right_keys);
  if (left_ttl_ms > 0) s += ", left ttl " + std::to_string(left_ttl_ms) + " ms";
  if (right_ttl_ms > 0) s += ", right ttl " + std::to_string(right_ttl_ms) + " ms";
  if (condition) s += ", where " + condition->ToString();
  if (left_unique) s += ", left unique";
  if (right_unique) s += ", right unique";
  return s + ")";
}

namespace {

constexpr uint64_t kNoRow = ~uint64_t{0};
constexpr char kTtlTimer[] = "regular_join_ttl";
constexpr char kMatchesColumn[] = "__matches";
constexpr char kWrittenColumn[] = "__written_ms";
constexpr const char* kRowsTable[2] = {"left_rows", "right_rows"};
constexpr const char* kSchemaTable[2] = {"left_schema", "right_schema"};
constexpr const char* kSideName[2] = {"left", "right"};
/// Rows per output batch and per batch written by compaction and snapshots.
constexpr int64_t kChunkRows = 65536;
/// Consecutive small batches at the end of a side merged into one.
constexpr size_t kMaxSmallBatches = 64;
constexpr int64_t kSmallBatchRows = 1024;

bool HashableType(arrow::Type::type id) {
  switch (id) {
    case arrow::Type::INT8:
    case arrow::Type::UINT8:
    case arrow::Type::INT16:
    case arrow::Type::UINT16:
    case arrow::Type::INT32:
    case arrow::Type::UINT32:
    case arrow::Type::INT64:
    case arrow::Type::UINT64:
    case arrow::Type::DATE32:
    case arrow::Type::DATE64:
    case arrow::Type::TIME32:
    case arrow::Type::TIME64:
    case arrow::Type::TIMESTAMP:
    case arrow::Type::DURATION:
    case arrow::Type::FLOAT:
    case arrow::Type::DOUBLE:
    case arrow::Type::BOOL:
    case arrow::Type::STRING:
    case arrow::Type::BINARY:
    case arrow::Type::LARGE_STRING:
    case arrow::Type::LARGE_BINARY:
      return true;
    default:
      return false;
  }
}

/// One input of the join and the rows it keeps.
struct Side {
  bool known = false;
  bool outer = false;     // unmatched rows are emitted padded
  bool updating = false;  // the input has an `_op` column
  int64_t ttl_ms = 0;
  std::shared_ptr<arrow::Schema> input_schema;
  std::shared_ptr<arrow::Schema> data_schema;  // the input without `_op`
  std::vector<int> data_indices;               // input column of each data column
  std::vector<int> key_indices;                // in the data columns
  std::vector<int> hash_indices;               // data columns hashed for retractions
  int op_index = -1;

  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;  // data columns
  std::vector<uint64_t> batch_first;                         // first row id of each
  // Per row, indexed by row id (ids grow with arrival; compaction renumbers).
  std::vector<uint32_t> row_batch;
  std::vector<uint32_t> group;
  std::vector<uint64_t> next;  // the previous row of the same group, or kNoRow
  std::vector<int32_t> matches;
  std::vector<uint8_t> alive;
  std::vector<uint8_t> null_key;
  std::vector<uint8_t> ok;       // the one-sided condition holds (1 without one)
  std::vector<uint64_t> hash;    // updating inputs only
  std::vector<int64_t> written;  // with a TTL only
  std::vector<uint64_t> head;    // per group: newest row, or kNoRow
  std::vector<uint8_t> seen;     // unique sides: per group, a row arrived
  bool unique = false;
  int64_t live = 0;
  size_t merged_batches = 0;  // batches before this index are not "small"

  uint64_t num_rows() const { return group.size(); }
  int64_t OffsetOf(uint64_t id) const {
    return static_cast<int64_t>(id - batch_first[row_batch[id]]);
  }
  bool Expired(uint64_t id, int64_t now) const {
    return ttl_ms > 0 && written[id] + ttl_ms <= now;
  }
};

// --- gathering rows from retained batches -------------------------------------

/// Where the rows `ids` (kNoRow: null) of `side` are.
RowRefs RefsOf(const Side& side, const uint64_t* ids, int64_t n) {
  thread_local std::vector<int32_t> slot;  // batch -> index in refs.batches
  slot.assign(side.batches.size(), -1);
  RowRefs refs;
  refs.source.resize(static_cast<size_t>(n));
  refs.row.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t id = ids[i];
    if (id == kNoRow) {
      refs.source[i] = -1;
      refs.row[i] = 0;
      continue;
    }
    const uint32_t b = side.row_batch[id];
    if (slot[b] < 0) {
      slot[b] = static_cast<int32_t>(refs.batches.size());
      refs.batches.push_back(side.batches[b].get());
    }
    refs.source[i] = slot[b];
    refs.row[i] = static_cast<int64_t>(id - side.batch_first[b]);
  }
  return refs;
}

/// Columns of `side` for the rows `ids` (kNoRow: null).
arrow::Result<std::vector<std::shared_ptr<arrow::Array>>> GatherSide(
    const Side& side, const uint64_t* ids, int64_t n, arrow::MemoryPool* pool) {
  return GatherColumns(RefsOf(side, ids, n), *side.data_schema, pool);
}

// --- the join condition ---------------------------------------------------------

void SplitConjunction(const arrow::compute::Expression& e,
                      std::vector<arrow::compute::Expression>* out) {
  const auto* call = e.call();
  if (call && (call->function_name == "and_kleene" || call->function_name == "and")) {
    for (const auto& a : call->arguments) SplitConjunction(a, out);
  } else {
    out->push_back(e);
  }
}

arrow::compute::Expression Conjunction(std::vector<arrow::compute::Expression> parts) {
  if (parts.size() == 1) return parts[0];
  return arrow::compute::and_(std::move(parts));
}

/// True where `result` (a boolean array or scalar of `n` rows) is true.
arrow::Status TrueRows(const arrow::Datum& result, int64_t n, uint8_t* out) {
  if (result.is_scalar()) {
    const auto& sc = *result.scalar();
    const bool v = sc.is_valid && static_cast<const arrow::BooleanScalar&>(sc).value;
    std::memset(out, v ? 1 : 0, static_cast<size_t>(n));
    return arrow::Status::OK();
  }
  const auto& a = *result.array();
  if (a.type->id() != arrow::Type::BOOL) {
    return arrow::Status::TypeError("the join condition is ", a.type->ToString(),
                                    ", not boolean");
  }
  const uint8_t* values = a.buffers[1]->data();
  const uint8_t* validity =
      a.GetNullCount() > 0 && a.buffers[0] ? a.buffers[0]->data() : nullptr;
  for (int64_t i = 0; i < n; ++i) {
    out[i] = arrow::bit_util::GetBit(values, a.offset + i) &&
             (!validity || arrow::bit_util::GetBit(validity, a.offset + i));
  }
  return arrow::Status::OK();
}

// --- the operator ---------------------------------------------------------------

class RegularJoinOperator : public Operator {
 public:
  explicit RegularJoinOperator(const RegularJoinOptions& o) : o_(o) {
    sides_[0].outer = EmitsUnmatched(o.type, 0);
    sides_[1].outer = EmitsUnmatched(o.type, 1);
    sides_[0].ttl_ms = o.left_ttl_ms;
    sides_[1].ttl_ms = o.right_ttl_ms;
  }

  arrow::Status Open(OperatorContext* ctx) override {
    pool_ = ctx->pool;
    exec_ = ctx->exec_context;
    name_ = ctx->operator_name;
    const int64_t ttl = MinTtl();
    if (ttl > 0 && ctx->timers) {
      ctx->timers->RegisterProcessingTimeTimer(WallClockMillis() + SweepEvery(),
                                               kTtlTimer);
    }
    if (ctx->restore) ARROW_RETURN_NOT_OK(Restore(ctx->restore));
    return arrow::Status::OK();
  }

  arrow::Status ProcessBatch(int input, const std::shared_ptr<arrow::RecordBatch>& batch,
                             OperatorContext* ctx, Collector* out) override {
    if (!pool_) {
      pool_ = ctx->pool;
      exec_ = ctx->exec_context;
      name_ = ctx->operator_name;
    }
    if (input >= 2 && input - 2 < static_cast<int>(o_.schema_inputs.size())) {
      // A row broadcast only to tell this instance the side's schema.
      return InitSide(o_.schema_inputs[input - 2], *batch->schema(), out);
    }
    if (input < 0 || input > 1) {
      return arrow::Status::Invalid(ctx->operator_name,
                                    ": a regular join has 2 inputs, got input ", input);
    }
    ARROW_RETURN_NOT_OK(InitSide(input, *batch->schema(), out));
    const int64_t n = batch->num_rows();
    if (n == 0) return arrow::Status::OK();
    Side& self = sides_[input];
    const int8_t* ops = nullptr;
    if (self.updating) {
      const auto& op_data = *batch->column_data(self.op_index);
      if (op_data.GetNullCount() > 0) {
        return arrow::Status::Invalid(name_, ": null in the ", kSideName[input],
                                      " input's '", kChangeOpColumn, "' column");
      }
      ops = op_data.GetValues<int8_t>(1);
    }
    ARROW_ASSIGN_OR_RAISE(uint64_t base, Append(input, DataColumns(self, *batch)));
    const int64_t now = MinTtl() > 0 ? WallClockMillis() : 0;
    Side& other = sides_[1 - input];
    // Phase 1, row by row: the state changes that emit nothing (store an
    // added row, find and drop the row a retraction retracts) and the other
    // side's candidate partners of each row's key.
    targets_.assign(static_cast<size_t>(n), kNoRow);
    adds_.assign(static_cast<size_t>(n), 0);
    cand_begin_.assign(static_cast<size_t>(n) + 1, 0);
    cands_.clear();
    cand_row_.clear();
    for (int64_t i = 0; i < n; ++i) {
      const uint64_t id = base + static_cast<uint64_t>(i);
      const bool add = ops == nullptr ||
                       ops[i] == static_cast<int8_t>(ChangeOp::kInsert) ||
                       ops[i] == static_cast<int8_t>(ChangeOp::kUpdateAfter);
      adds_[i] = add;
      cand_begin_[i] = cands_.size();
      uint64_t target = id;
      const uint32_t g = self.group[id];
      if (!add) {
        if (ops[i] < 0 || ops[i] > static_cast<int8_t>(ChangeOp::kDelete)) {
          return arrow::Status::Invalid(name_, ": ", kSideName[input], " row ", i,
                                        " has an unknown '", kChangeOpColumn, "' value ",
                                        static_cast<int>(ops[i]));
        }
        target = FindStored(&self, id, now);
        if (target == kNoRow) {
          ++ignored_retractions_;
          continue;
        }
        Kill(&self, target);
      } else if (unique_active_ && self.unique && !self.null_key[id]) {
        if (self.seen[g]) {
          return arrow::Status::Invalid(
              name_, ": the ", kSideName[input],
              " input was declared unique on its join key, but a key arrived twice (",
              kSideName[input], " row ", i, " of a batch)");
        }
        self.seen[g] = 1;
      }
      targets_[i] = target;
      if (!self.null_key[id] && other.known) {
        for (uint64_t m = other.head[g]; m != kNoRow; m = other.next[m]) {
          if (!other.alive[m]) continue;
          if (other.Expired(m, now)) {
            Kill(&other, m);
            continue;
          }
          cands_.push_back(m);
          cand_row_.push_back(id);
        }
      }
      if (add) {
        bool store = !self.null_key[id] || self.outer;
        if (unique_active_ && !self.null_key[id]) {
          // The other side's only row of this key is among the candidates (or
          // has been and gone): this row's result is final.
          if (other.unique && other.seen[g]) store = false;
          // Never matches; its key is remembered in `seen`.
          if (self.unique && !self.ok[id]) store = false;
        }
        if (store) Link(&self, id);
      }
    }
    cand_begin_[n] = cands_.size();
    // Phase 2: which candidate pairs satisfy the join condition.
    ARROW_RETURN_NOT_OK(EvaluatePairs(input));
    // Phase 3, row by row: emit.
    for (int64_t i = 0; i < n; ++i) {
      const uint64_t target = targets_[i];
      if (target == kNoRow) continue;
      const size_t c0 = cand_begin_[i], c1 = cand_begin_[i + 1];
      if (adds_[i]) {
        EmitAccumulate(input, target, c0, c1, now);
      } else {
        EmitRetract(input, target, c0, c1, now);
      }
      if (out_ops_.size() >= static_cast<size_t>(kChunkRows)) {
        ARROW_RETURN_NOT_OK(Flush(out));
      }
    }
    ARROW_RETURN_NOT_OK(Flush(out));
    ARROW_RETURN_NOT_OK(MaybeCompact(0));
    return MaybeCompact(1);
  }

  arrow::Status OnTimer(const Timer& timer, OperatorContext* ctx,
                        Collector* out) override {
    if (timer.key != kTtlTimer) return arrow::Status::OK();
    // The timer's time counts as "now" when it is ahead of the clock (tests
    // drive expiry through it).
    const int64_t now = std::max(WallClockMillis(), timer.time);
    for (int s = 0; s < 2; ++s) {
      Side& side = sides_[s];
      if (side.ttl_ms <= 0 || !side.known) continue;
      for (uint64_t id = 0; id < side.num_rows(); ++id) {
        if (side.alive[id] && side.Expired(id, now)) Kill(&side, id);
      }
      ARROW_RETURN_NOT_OK(MaybeCompact(s));
    }
    if (ctx->timers) {
      ctx->timers->RegisterProcessingTimeTimer(now + SweepEvery(), kTtlTimer);
    }
    return arrow::Status::OK();
  }

  arrow::Status SnapshotState(SnapshotWriter* writer, OperatorContext* ctx) override {
    for (int s = 0; s < 2; ++s) {
      const Side& side = sides_[s];
      if (!side.known) continue;
      ARROW_ASSIGN_OR_RAISE(auto empty,
                            arrow::RecordBatch::MakeEmpty(side.input_schema, ctx->pool));
      ARROW_RETURN_NOT_OK(writer->WriteOperatorState(kSchemaTable[s], std::move(empty)));
      const auto& keys = s == 0 ? o_.left_keys : o_.right_keys;
      std::vector<uint64_t> ids;
      auto write = [&]() -> arrow::Status {
        if (ids.empty()) return arrow::Status::OK();
        const auto n = static_cast<int64_t>(ids.size());
        ARROW_ASSIGN_OR_RAISE(auto columns, GatherSide(side, ids.data(), n, ctx->pool));
        arrow::Int32Builder matches(ctx->pool);
        arrow::Int64Builder written(ctx->pool);
        ARROW_RETURN_NOT_OK(matches.Reserve(n));
        ARROW_RETURN_NOT_OK(written.Reserve(n));
        for (uint64_t id : ids) {
          matches.UnsafeAppend(side.matches[id]);
          written.UnsafeAppend(side.ttl_ms > 0 ? side.written[id] : 0);
        }
        auto fields = side.data_schema->fields();
        fields.push_back(arrow::field(kMatchesColumn, arrow::int32(), false));
        fields.push_back(arrow::field(kWrittenColumn, arrow::int64(), false));
        ARROW_ASSIGN_OR_RAISE(auto m, matches.Finish());
        ARROW_ASSIGN_OR_RAISE(auto w, written.Finish());
        columns.push_back(std::move(m));
        columns.push_back(std::move(w));
        auto rows =
            arrow::RecordBatch::Make(arrow::schema(fields), n, std::move(columns));
        ids.clear();
        return writer->WriteKeyed(kRowsTable[s], std::move(rows), keys);
      };
      for (uint64_t id = 0; id < side.num_rows(); ++id) {
        if (!side.alive[id]) continue;
        ids.push_back(id);
        if (ids.size() >= static_cast<size_t>(kChunkRows)) ARROW_RETURN_NOT_OK(write());
      }
      ARROW_RETURN_NOT_OK(write());
    }
    return arrow::Status::OK();
  }

  std::vector<StateDescriptor> state_tables() const override {
    return {{kRowsTable[0], "list"}, {kRowsTable[1], "list"}};
  }

 private:
  int64_t MinTtl() const {
    int64_t t = 0;
    for (const auto& s : sides_) {
      if (s.ttl_ms > 0) t = t == 0 ? s.ttl_ms : std::min(t, s.ttl_ms);
    }
    return t;
  }
  int64_t SweepEvery() const { return std::max<int64_t>(1, MinTtl() / 2); }

  static std::shared_ptr<arrow::RecordBatch> DataColumns(
      const Side& side, const arrow::RecordBatch& batch) {
    std::vector<std::shared_ptr<arrow::Array>> columns;
    columns.reserve(side.data_indices.size());
    for (int i : side.data_indices) columns.push_back(batch.column(i));
    return arrow::RecordBatch::Make(side.data_schema, batch.num_rows(),
                                    std::move(columns));
  }

  // Learns input `input`'s schema from its first batch (or a restored
  // snapshot); later batches must have the same schema.
  arrow::Status InitSide(int input, const arrow::Schema& schema, Collector* out) {
    Side& s = sides_[input];
    if (s.known) {
      if (!schema.Equals(*s.input_schema, false)) {
        return arrow::Status::TypeError(
            name_, ": ", kSideName[input], " input changed schema from ",
            s.input_schema->ToString(false), " to ", schema.ToString(false));
      }
      return arrow::Status::OK();
    }
    s.input_schema = std::make_shared<arrow::Schema>(schema.fields());
    s.op_index = schema.GetFieldIndex(kChangeOpColumn);
    if (s.op_index >= 0 && schema.field(s.op_index)->type()->id() != arrow::Type::INT8) {
      return arrow::Status::TypeError(
          name_, ": the ", kSideName[input], " input's '", kChangeOpColumn,
          "' column is ", schema.field(s.op_index)->type()->ToString(), ", not int8");
    }
    s.updating = s.op_index >= 0;
    arrow::FieldVector fields;
    for (int i = 0; i < schema.num_fields(); ++i) {
      if (i == s.op_index) continue;
      s.data_indices.push_back(i);
      fields.push_back(schema.field(i));
    }
    s.data_schema = arrow::schema(fields);
    const auto& keys = input == 0 ? o_.left_keys : o_.right_keys;
    for (const auto& k : keys) {
      const int i = s.data_schema->GetFieldIndex(k);
      if (i < 0) {
        return arrow::Status::KeyError(name_, ": ", kSideName[input], " key column '", k,
                                       "' is not in the ", kSideName[input],
                                       " input schema (", schema.ToString(false), ")");
      }
      s.key_indices.push_back(i);
    }
    if (s.updating) {
      for (int i = 0; i < s.data_schema->num_fields(); ++i) {
        if (HashableType(s.data_schema->field(i)->type()->id()))
          s.hash_indices.push_back(i);
      }
    }
    s.known = true;
    const Side& other = sides_[1 - input];
    std::vector<std::shared_ptr<arrow::DataType>> key_types;
    for (int k : s.key_indices) key_types.push_back(s.data_schema->field(k)->type());
    if (!other.known) {
      auto* exec = arrow::compute::default_exec_context();
      ARROW_ASSIGN_OR_RAISE(key_table_, KeyTable::Make(key_types, false, exec, pool_));
      return arrow::Status::OK();
    }
    const Side& l = sides_[0];
    const Side& r = sides_[1];
    for (size_t k = 0; k < l.key_indices.size(); ++k) {
      const auto& lt = l.data_schema->field(l.key_indices[k])->type();
      const auto& rt = r.data_schema->field(r.key_indices[k])->type();
      if (!lt->Equals(*rt)) {
        return arrow::Status::TypeError(name_, ": key type mismatch: left key '",
                                        o_.left_keys[k], "' is ", lt->ToString(),
                                        " but right key '", o_.right_keys[k], "' is ",
                                        rt->ToString(), " (cast one side first)");
      }
    }
    ARROW_ASSIGN_OR_RAISE(result_schema_,
                          JoinOutputSchema(*l.data_schema, *r.data_schema, {}, name_));
    updating_output_ = l.updating || r.updating || o_.type != JoinType::kInner;
    output_schema_ = updating_output_ ? ChangelogSchema(result_schema_) : result_schema_;
    if (output_schema_->GetFieldIndex(kChangeOpColumn) !=
        (updating_output_ ? output_schema_->num_fields() - 1 : -1)) {
      return arrow::Status::Invalid(name_, ": an input has a column named '",
                                    kChangeOpColumn, "' besides its changelog column");
    }
    ARROW_RETURN_NOT_OK(SetUpCondition());
    ARROW_RETURN_NOT_OK(SetUpUnique());
    // Rows of the side known first could not be emitted padded while the other
    // side's schema was unknown (it had no rows, so none of them matched).
    const int first = 1 - input;
    if (out != nullptr && sides_[first].outer) {
      const Side& f = sides_[first];
      for (uint64_t id = 0; id < f.num_rows(); ++id) {
        if (f.alive[id] && f.matches[id] == 0) EmitPadded(first, id, ChangeOp::kInsert);
      }
      ARROW_RETURN_NOT_OK(Flush(out));
    }
    return arrow::Status::OK();
  }

  // Splits the condition into conjuncts over the left columns only, the right
  // columns only, and both; binds each (once both schemas are known).
  arrow::Status SetUpCondition() {
    if (!o_.condition) return arrow::Status::OK();
    std::vector<arrow::compute::Expression> parts, per[3];
    SplitConjunction(*o_.condition, &parts);
    const int num_left = sides_[0].data_schema->num_fields();
    std::vector<int> mixed_fields;
    for (const auto& part : parts) {
      int mask = 0;
      std::vector<int> fields;
      for (const auto& ref : arrow::compute::FieldsInExpression(part)) {
        const std::string* field_name = ref.name();
        const int index = field_name ? result_schema_->GetFieldIndex(*field_name) : -1;
        if (index < 0) {
          return arrow::Status::KeyError(
              name_, ": the join condition ", o_.condition->ToString(), " refers to ",
              ref.ToString(), ", not a column of the join output (",
              result_schema_->ToString(false), ")");
        }
        mask |= index < num_left ? 1 : 2;
        fields.push_back(index);
      }
      const int kind = mask == 2 ? 1 : mask == 3 ? 2 : 0;  // constants: per left row
      per[kind].push_back(part);
      if (kind == 2)
        mixed_fields.insert(mixed_fields.end(), fields.begin(), fields.end());
    }
    const auto& all = result_schema_->fields();
    side_out_schema_[0] = arrow::schema({all.begin(), all.begin() + num_left});
    side_out_schema_[1] = arrow::schema({all.begin() + num_left, all.end()});
    for (int side = 0; side < 2; ++side) {
      if (!per[side].empty()) side_condition_[side].emplace(Conjunction(per[side]));
    }
    if (!per[2].empty()) {
      std::sort(mixed_fields.begin(), mixed_fields.end());
      mixed_fields.erase(std::unique(mixed_fields.begin(), mixed_fields.end()),
                         mixed_fields.end());
      arrow::FieldVector fields;
      for (int index : mixed_fields) {
        fields.push_back(all[index]);
        mixed_columns_.emplace_back(index < num_left ? 0 : 1,
                                    index < num_left ? index : index - num_left);
      }
      mixed_schema_ = arrow::schema(fields);
      mixed_condition_.emplace(Conjunction(per[2]));
    }
    // Rows that arrived before the other side's schema was known.
    for (int side = 0; side < 2; ++side) {
      for (size_t b = 0; b < sides_[side].batches.size(); ++b) {
        ARROW_RETURN_NOT_OK(EvaluateSideCondition(side, *sides_[side].batches[b],
                                                  sides_[side].batch_first[b]));
      }
    }
    return arrow::Status::OK();
  }

  // ok[] of the rows of `data` (ids from `base`) under the one-sided condition.
  arrow::Status EvaluateSideCondition(int side, const arrow::RecordBatch& data,
                                      uint64_t base) {
    if (!side_condition_[side] || data.num_rows() == 0) return arrow::Status::OK();
    auto renamed =
        arrow::RecordBatch::Make(side_out_schema_[side], data.num_rows(), data.columns());
    ARROW_ASSIGN_OR_RAISE(auto result,
                          side_condition_[side]->Evaluate(*renamed, name_, exec()));
    return TrueRows(result, data.num_rows(), sides_[side].ok.data() + base);
  }

  arrow::Status SetUpUnique() {
    sides_[0].unique = o_.left_unique;
    sides_[1].unique = o_.right_unique;
    if (!o_.left_unique && !o_.right_unique) return arrow::Status::OK();
    if (sides_[0].updating || sides_[1].updating) {
      return arrow::Status::Invalid(
          name_, ": a side declared unique needs append-only inputs (an input has '",
          kChangeOpColumn, "')");
    }
    unique_active_ = true;
    for (int side = 0; side < 2; ++side) {
      Side& s = sides_[side];
      if (!s.unique) continue;
      s.seen.resize(s.head.size(), 0);
      for (uint64_t id = 0; id < s.num_rows(); ++id) {
        if (!s.alive[id] || s.null_key[id]) continue;
        if (s.seen[s.group[id]]) {
          return arrow::Status::Invalid(
              name_, ": the ", kSideName[side],
              " input was declared unique on its join key, but a key arrived twice");
        }
        s.seen[s.group[id]] = 1;
      }
    }
    return arrow::Status::OK();
  }

  // Adds the rows of `data` to side `input` (not yet alive) and returns the id
  // of the first.
  arrow::Result<uint64_t> Append(int input, std::shared_ptr<arrow::RecordBatch> data) {
    Side& s = sides_[input];
    const int64_t n = data->num_rows();
    std::vector<std::shared_ptr<arrow::Array>> keys;
    for (int k : s.key_indices) keys.push_back(data->column(k));
    ARROW_ASSIGN_OR_RAISE(auto ids, key_table_->Consume(keys, n));
    const uint32_t num_groups = key_table_->num_groups();
    for (auto& side : sides_) {
      if (side.head.size() < num_groups) side.head.resize(num_groups, kNoRow);
      if (side.unique && side.seen.size() < num_groups) side.seen.resize(num_groups, 0);
    }
    const uint64_t base = s.num_rows();
    const auto batch_index = static_cast<uint32_t>(s.batches.size());
    const size_t end = base + static_cast<size_t>(n);
    s.row_batch.resize(end, batch_index);
    s.group.insert(s.group.end(), ids->raw_values(), ids->raw_values() + n);
    s.next.resize(end, kNoRow);
    s.matches.resize(end, 0);
    s.alive.resize(end, 0);
    s.null_key.resize(end, 0);
    s.ok.resize(end, 1);
    for (int k : s.key_indices) {
      const auto& d = *data->column_data(k);
      if (d.GetNullCount() == 0) continue;
      const uint8_t* v = d.buffers[0]->data();
      for (int64_t i = 0; i < n; ++i) {
        if (!arrow::bit_util::GetBit(v, d.offset + i)) s.null_key[base + i] = 1;
      }
    }
    if (s.ttl_ms > 0) s.written.resize(end, WallClockMillis());
    if (s.updating) {
      std::vector<uint64_t> h;
      if (!s.hash_indices.empty()) {
        ARROW_RETURN_NOT_OK(HashColumns(*data, s.hash_indices, &h));
      } else {
        h.assign(static_cast<size_t>(n), 0);
      }
      s.hash.insert(s.hash.end(), h.begin(), h.end());
    }
    if (output_schema_) ARROW_RETURN_NOT_OK(EvaluateSideCondition(input, *data, base));
    s.batch_first.push_back(base);
    s.batches.push_back(std::move(data));
    return base;
  }

  void Link(Side* s, uint64_t id) {
    const uint32_t g = s->group[id];
    s->next[id] = s->head[g];
    s->head[g] = id;
    s->alive[id] = 1;
    ++s->live;
  }

  static void Kill(Side* s, uint64_t id) {
    s->alive[id] = 0;
    --s->live;
  }

  void EmitRow(int side, uint64_t self_id, uint64_t other_id, ChangeOp op) {
    if (side == 0) {
      out_left_.push_back(self_id);
      out_right_.push_back(other_id);
    } else {
      out_left_.push_back(other_id);
      out_right_.push_back(self_id);
    }
    out_ops_.push_back(op);
  }
  void EmitPadded(int side, uint64_t id, ChangeOp op) { EmitRow(side, id, kNoRow, op); }

  // An added row (+I / +U): join it with the candidates that pass.
  void EmitAccumulate(int input, uint64_t id, size_t c0, size_t c1, int64_t now) {
    Side& self = sides_[input];
    Side& other = sides_[1 - input];
    int32_t matched = 0;
    for (size_t c = c0; c < c1; ++c) {
      if (!pass_[c]) continue;
      const uint64_t m = cands_[c];
      if (other.outer && other.matches[m] == 0 && output_schema_) {
        EmitPadded(1 - input, m, ChangeOp::kDelete);
      }
      ++other.matches[m];
      if (other.ttl_ms > 0) other.written[m] = now;
      EmitRow(input, id, m, ChangeOp::kInsert);
      ++matched;
    }
    if (matched == 0 && self.outer && output_schema_) {
      EmitPadded(input, id, ChangeOp::kInsert);
    }
    self.matches[id] = matched;
    if (unique_active_ && self.unique) {
      // The other side's rows waiting for this key have their final result.
      for (size_t c = c0; c < c1; ++c) {
        if (other.alive[cands_[c]]) Kill(&other, cands_[c]);
      }
    }
  }

  // A retraction (-U / -D) of the stored row `found`: retract what it produced.
  void EmitRetract(int input, uint64_t found, size_t c0, size_t c1, int64_t now) {
    Side& self = sides_[input];
    Side& other = sides_[1 - input];
    const int32_t had_partners = self.matches[found];
    for (size_t c = c0; c < c1; ++c) {
      if (!pass_[c]) continue;
      const uint64_t m = cands_[c];
      EmitRow(input, found, m, ChangeOp::kDelete);
      --self.matches[found];
      --other.matches[m];
      if (other.ttl_ms > 0) other.written[m] = now;
      if (other.outer && other.matches[m] == 0) {
        EmitPadded(1 - input, m, ChangeOp::kInsert);
      }
    }
    // The padded row is downstream only if the row never had a partner (or
    // all of them were retracted); partners that expired keep their results.
    if (self.outer && had_partners == 0 && output_schema_) {
      EmitPadded(input, found, ChangeOp::kDelete);
    }
  }

  // The live stored row equal to the retraction row `id`, or kNoRow.
  uint64_t FindStored(Side* self, uint64_t id, int64_t now) {
    for (uint64_t r = self->head[self->group[id]]; r != kNoRow; r = self->next[r]) {
      if (!self->alive[r] || self->hash[r] != self->hash[id]) continue;
      if (self->Expired(r, now)) {
        Kill(self, r);
        continue;
      }
      if (RowsEqual(*self, r, id)) return r;
    }
    return kNoRow;
  }

  // pass_[c]: candidate pair c (row cand_row_[c] of `input`, row cands_[c] of
  // the other side) satisfies the join condition.
  arrow::Status EvaluatePairs(int input) {
    const size_t n = cands_.size();
    pass_.assign(n, 1);
    if (n == 0 || !output_schema_) return arrow::Status::OK();
    const Side& self = sides_[input];
    const Side& other = sides_[1 - input];
    for (size_t c = 0; c < n; ++c) {
      pass_[c] = self.ok[cand_row_[c]] && other.ok[cands_[c]];
    }
    if (!mixed_condition_) return arrow::Status::OK();
    const uint64_t* ids[2];
    ids[input] = cand_row_.data();
    ids[1 - input] = cands_.data();
    RowRefs refs[2];
    bool have_refs[2] = {false, false};
    std::vector<std::shared_ptr<arrow::Array>> columns;
    for (const auto& [side, column] : mixed_columns_) {
      if (!have_refs[side]) {
        refs[side] = RefsOf(sides_[side], ids[side], static_cast<int64_t>(n));
        have_refs[side] = true;
      }
      ARROW_ASSIGN_OR_RAISE(
          auto a, GatherColumn(refs[side], column,
                               sides_[side].data_schema->field(column)->type(), pool_));
      columns.push_back(std::move(a));
    }
    auto batch = arrow::RecordBatch::Make(mixed_schema_, static_cast<int64_t>(n),
                                          std::move(columns));
    ARROW_ASSIGN_OR_RAISE(auto result, mixed_condition_->Evaluate(*batch, name_, exec()));
    std::vector<uint8_t> holds(n);
    ARROW_RETURN_NOT_OK(TrueRows(result, static_cast<int64_t>(n), holds.data()));
    for (size_t c = 0; c < n; ++c) pass_[c] &= holds[c];
    return arrow::Status::OK();
  }

  arrow::compute::ExecContext* exec() const {
    return exec_ ? exec_ : arrow::compute::default_exec_context();
  }

  bool RowsEqual(const Side& s, uint64_t a, uint64_t b) const {
    const auto& ba = *s.batches[s.row_batch[a]];
    const auto& bb = *s.batches[s.row_batch[b]];
    const int64_t oa = s.OffsetOf(a), ob = s.OffsetOf(b);
    const auto options = arrow::EqualOptions::Defaults().nans_equal(true);
    for (int c = 0; c < ba.num_columns(); ++c) {
      if (!ba.column(c)->RangeEquals(oa, oa + 1, ob, *bb.column(c), options))
        return false;
    }
    return true;
  }

  arrow::Status Flush(Collector* out) {
    if (out_ops_.empty()) return arrow::Status::OK();
    const auto n = static_cast<int64_t>(out_ops_.size());
    ARROW_ASSIGN_OR_RAISE(auto columns,
                          GatherSide(sides_[0], out_left_.data(), n, pool_));
    ARROW_ASSIGN_OR_RAISE(auto right, GatherSide(sides_[1], out_right_.data(), n, pool_));
    for (auto& c : right) columns.push_back(std::move(c));
    std::shared_ptr<arrow::RecordBatch> batch;
    if (updating_output_) {
      ARROW_ASSIGN_OR_RAISE(auto ops, arrow::AllocateBuffer(n, pool_));
      std::memcpy(ops->mutable_data(), out_ops_.data(), static_cast<size_t>(n));
      columns.push_back(std::make_shared<arrow::Int8Array>(n, std::move(ops)));
    }
    batch = arrow::RecordBatch::Make(output_schema_, n, std::move(columns));
    out_left_.clear();
    out_right_.clear();
    out_ops_.clear();
    return out->Emit(std::move(batch));
  }

  arrow::Status MaybeCompact(int input) {
    Side& s = sides_[input];
    const auto rows = static_cast<int64_t>(s.num_rows());
    const int64_t dead = rows - s.live;
    if (dead > std::max<int64_t>(s.live, 16384)) return Compact(&s);
    return MergeSmallBatches(&s);
  }

  // Copies the live rows of `s` into new batches, renumbers them in order and
  // rebuilds the chains.
  arrow::Status Compact(Side* s) {
    std::vector<uint64_t> live_ids;
    live_ids.reserve(static_cast<size_t>(s->live));
    for (uint64_t id = 0; id < s->num_rows(); ++id) {
      if (s->alive[id]) live_ids.push_back(id);
    }
    std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
    std::vector<uint64_t> batch_first;
    for (size_t begin = 0; begin < live_ids.size(); begin += kChunkRows) {
      const auto n = static_cast<int64_t>(
          std::min<size_t>(live_ids.size() - begin, static_cast<size_t>(kChunkRows)));
      ARROW_ASSIGN_OR_RAISE(auto columns,
                            GatherSide(*s, live_ids.data() + begin, n, pool_));
      batch_first.push_back(begin);
      batches.push_back(arrow::RecordBatch::Make(s->data_schema, n, std::move(columns)));
    }
    const size_t n = live_ids.size();
    std::vector<uint32_t> row_batch(n), group(n);
    std::vector<int32_t> matches(n);
    std::vector<uint8_t> null_key(n), ok(n);
    std::vector<uint64_t> hash;
    std::vector<int64_t> written;
    for (size_t i = 0; i < n; ++i) {
      const uint64_t id = live_ids[i];
      row_batch[i] = static_cast<uint32_t>(i / kChunkRows);
      group[i] = s->group[id];
      matches[i] = s->matches[id];
      null_key[i] = s->null_key[id];
      ok[i] = s->ok[id];
      if (s->updating) hash.push_back(s->hash[id]);
      if (s->ttl_ms > 0) written.push_back(s->written[id]);
    }
    s->batches = std::move(batches);
    s->batch_first = std::move(batch_first);
    s->row_batch = std::move(row_batch);
    s->group = std::move(group);
    s->matches = std::move(matches);
    s->null_key = std::move(null_key);
    s->ok = std::move(ok);
    s->hash = std::move(hash);
    s->written = std::move(written);
    s->next.assign(n, kNoRow);
    s->alive.assign(n, 0);
    std::fill(s->head.begin(), s->head.end(), kNoRow);
    s->live = 0;
    for (uint64_t id = 0; id < n; ++id) Link(s, id);
    s->merged_batches = s->batches.size();
    return arrow::Status::OK();
  }

  // Many small input batches cost memory and gather time: merge a run of them
  // at the end of the side into one batch (row ids do not change).
  arrow::Status MergeSmallBatches(Side* s) {
    const size_t count = s->batches.size();
    if (count - s->merged_batches < kMaxSmallBatches) return arrow::Status::OK();
    size_t first = count;
    while (first > s->merged_batches &&
           s->batches[first - 1]->num_rows() < kSmallBatchRows) {
      --first;
    }
    if (count - first < kMaxSmallBatches) {
      s->merged_batches = first;
      return arrow::Status::OK();
    }
    std::vector<std::shared_ptr<arrow::RecordBatch>> parts(s->batches.begin() + first,
                                                           s->batches.end());
    ARROW_ASSIGN_OR_RAISE(auto merged, arrow::ConcatenateRecordBatches(parts, pool_));
    const uint64_t first_row = s->batch_first[first];
    s->batches.resize(first);
    s->batch_first.resize(first);
    const auto index = static_cast<uint32_t>(first);
    for (uint64_t id = first_row; id < s->num_rows(); ++id) s->row_batch[id] = index;
    s->batches.push_back(std::move(merged));
    s->batch_first.push_back(first_row);
    s->merged_batches = s->batches.size();
    return arrow::Status::OK();
  }

  // Rebuilds both sides from a snapshot (ctx->restore in Open).
  arrow::Status Restore(SnapshotReader* reader) {
    for (int s = 0; s < 2; ++s) {
      ARROW_ASSIGN_OR_RAISE(auto schemas, reader->ReadOperatorState(kSchemaTable[s]));
      if (schemas.empty()) continue;
      ARROW_RETURN_NOT_OK(InitSide(s, *schemas.front()->schema(), nullptr));
    }
    for (int s = 0; s < 2; ++s) {
      ARROW_ASSIGN_OR_RAISE(auto batches, reader->ReadKeyed(kRowsTable[s]));
      Side& side = sides_[s];
      for (const auto& b : batches) {
        if (!side.known) {
          return arrow::Status::Invalid(name_, ": snapshot has ", kSideName[s],
                                        " rows but no ", kSideName[s], " schema");
        }
        const int mi = b->schema()->GetFieldIndex(kMatchesColumn);
        const int wi = b->schema()->GetFieldIndex(kWrittenColumn);
        if (mi < 0 || wi < 0 || b->num_columns() != side.data_schema->num_fields() + 2) {
          return arrow::Status::Invalid(
              name_, ": snapshot table '", kRowsTable[s],
              "' has an unexpected schema: ", b->schema()->ToString(false));
        }
        std::vector<std::shared_ptr<arrow::Array>> columns;
        for (int c = 0; c < side.data_schema->num_fields(); ++c) {
          columns.push_back(b->column(c));
        }
        for (int c = 0; c < side.data_schema->num_fields(); ++c) {
          if (!b->schema()->field(c)->type()->Equals(
                  *side.data_schema->field(c)->type())) {
            return arrow::Status::Invalid(name_, ": snapshot table '", kRowsTable[s],
                                          "' does not match the ", kSideName[s],
                                          " schema: ", b->schema()->ToString(false));
          }
        }
        auto data = arrow::RecordBatch::Make(side.data_schema, b->num_rows(), columns);
        ARROW_ASSIGN_OR_RAISE(uint64_t base, Append(s, std::move(data)));
        const auto* m = b->column_data(mi)->GetValues<int32_t>(1);
        const auto* w = b->column_data(wi)->GetValues<int64_t>(1);
        for (int64_t i = 0; i < b->num_rows(); ++i) {
          const uint64_t id = base + static_cast<uint64_t>(i);
          side.matches[id] = m[i];
          if (side.ttl_ms > 0) side.written[id] = w[i];
          Link(&side, id);
          if (unique_active_ && side.unique && !side.null_key[id]) {
            side.seen[side.group[id]] = 1;
          }
        }
      }
    }
    return arrow::Status::OK();
  }

  const RegularJoinOptions& o_;
  arrow::MemoryPool* pool_ = nullptr;
  std::string name_;
  std::unique_ptr<KeyTable> key_table_;
  Side sides_[2];
  std::shared_ptr<arrow::Schema> result_schema_, output_schema_;
  bool updating_output_ = false;
  int64_t ignored_retractions_ = 0;
  arrow::compute::ExecContext* exec_ = nullptr;
  // The join condition, split (set up once both schemas are known).
  std::optional<BoundExpression> side_condition_[2];
  std::shared_ptr<arrow::Schema> side_out_schema_[2];
  std::optional<BoundExpression> mixed_condition_;
  std::shared_ptr<arrow::Schema> mixed_schema_;
  std::vector<std::pair<int, int>> mixed_columns_;  // (side, data column)
  bool unique_active_ = false;
  // Per input batch: each row's target (its id, the stored row a retraction
  // retracts, or kNoRow), whether it adds, and its candidate partners
  // cands_[cand_begin_[i] .. cand_begin_[i + 1]) (cand_row_: the row's id).
  std::vector<uint64_t> targets_;
  std::vector<uint8_t> adds_;
  std::vector<size_t> cand_begin_;
  std::vector<uint64_t> cands_, cand_row_;
  std::vector<uint8_t> pass_;
  // Output rows being gathered: left and right row ids (kNoRow: padding), op.
  std::vector<uint64_t> out_left_, out_right_;
  std::vector<ChangeOp> out_ops_;
};

/// Passes its input through and emits the first row it sees to the side output
/// kRegularJoinSchemaTag (the router drops empty batches, so one row).
class SchemaAnnouncer : public Operator {
 public:
  arrow::Status ProcessBatch(int, const std::shared_ptr<arrow::RecordBatch>& batch,
                             OperatorContext*, Collector* out) override {
    if (!announced_ && batch->num_rows() > 0) {
      announced_ = true;
      ARROW_RETURN_NOT_OK(out->EmitSide(kRegularJoinSchemaTag, batch->Slice(0, 1)));
    }
    return out->Emit(batch);
  }

 private:
  bool announced_ = false;
};

}  // namespace

void RegisterRegularJoin(OperatorRegistry* registry) {
  ARROW_CHECK_OK(registry->AddOperator(
      "regular_join_schema",
      [](const PlanNode&, int, int) -> arrow::Result<std::unique_ptr<Operator>> {
        return std::make_unique<SchemaAnnouncer>();
      }));
  ARROW_CHECK_OK(registry->AddOperator(
      "regular_join",
      [](const PlanNode& node, int, int) -> arrow::Result<std::unique_ptr<Operator>> {
        const auto& o = node.options_as<RegularJoinOptions>();
        if (o.left_keys.empty() || o.left_keys.size() != o.right_keys.size()) {
          return arrow::Status::Invalid(node.name,
                                        ": needs the same number (>= 1) of left and "
                                        "right key columns");
        }
        if (o.left_ttl_ms < 0 || o.right_ttl_ms < 0) {
          return arrow::Status::Invalid(node.name, ": negative state TTL");
        }
        return std::make_unique<RegularJoinOperator>(o);
      }));
}

}  // namespace sabot
