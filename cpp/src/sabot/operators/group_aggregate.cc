#include "sabot/operators/group_aggregate.h"

#include <arrow/array/concatenate.h>
#include <arrow/builder.h>
#include <arrow/compute/api_vector.h>
#include <arrow/util/logging.h>

#include <set>

#include "sabot/exec/partitioner.h"
#include "sabot/operators/changelog.h"
#include "sabot/operators/key_table.h"
#include "sabot/operators/operator_state.h"

namespace sabot {

namespace cp = arrow::compute;

std::string GroupAggregateOptions::ToString() const {
  std::string s = "group_aggregate(keys [";
  for (size_t i = 0; i < keys.size(); ++i) s += (i ? ", " : "") + keys[i];
  s += "], ";
  for (size_t i = 0; i < aggregates.size(); ++i)
    s += (i ? ", " : "") + aggregates[i].ToString();
  if (state_ttl_ms > 0) s += ", ttl " + std::to_string(state_ttl_ms) + " ms";
  return s + ")";
}

namespace {

constexpr char kTtlTimer[] = "ttl";

class GroupAggregateOperator : public Operator {
 public:
  explicit GroupAggregateOperator(const GroupAggregateOptions& o) : o_(o) {}

  arrow::Status Open(OperatorContext* ctx) override {
    if (o_.state_ttl_ms > 0) {
      ctx->timers->RegisterProcessingTimeTimer(WallClockMillis() + o_.state_ttl_ms,
                                               kTtlTimer);
    }
    if (ctx->restore) ARROW_RETURN_NOT_OK(Restore(ctx));
    return arrow::Status::OK();
  }

  /// Keyed table "groups": k0.., last_access (ms, for the TTL), the
  /// accumulator states of every live key; "meta": the input schema.
  arrow::Status SnapshotState(SnapshotWriter* writer, OperatorContext* ctx) override {
    InstanceMeta meta;
    meta.instance_index = ctx->instance_index;
    meta.parallelism = ctx->parallelism;
    meta.schemas["input"] = input_schema_;
    ARROW_RETURN_NOT_OK(WriteInstanceMeta(writer, meta));
    if (!key_table_) return arrow::Status::OK();
    std::vector<uint32_t> groups;
    std::vector<int64_t> access;
    for (uint32_t g = 0; g < alive_.size(); ++g) {
      if (!alive_[g]) continue;
      groups.push_back(g);
      access.push_back(last_access_[g]);
    }
    if (groups.empty()) return arrow::Status::OK();
    StateColumns columns;
    ARROW_ASSIGN_OR_RAISE(auto keys, key_table_->KeysOf(groups));
    columns.AddKeys(keys);
    arrow::Int64Builder b(pool_);
    ARROW_RETURN_NOT_OK(b.AppendValues(access));
    ARROW_ASSIGN_OR_RAISE(auto access_array, b.Finish());
    columns.Add("last_access", access_array);
    ARROW_RETURN_NOT_OK(columns.AddAccumulators(accs_, groups));
    ARROW_ASSIGN_OR_RAISE(auto batch,
                          columns.Finish(static_cast<int64_t>(groups.size())));
    return writer->WriteKeyed("groups", batch, StateKeyColumns(o_.keys.size()));
  }

  arrow::Status ProcessBatch(int, const std::shared_ptr<arrow::RecordBatch>& batch,
                             OperatorContext* ctx, Collector* out) override {
    if (!output_schema_) ARROW_RETURN_NOT_OK(Init(*batch->schema(), ctx));
    const int64_t n = batch->num_rows();
    if (n == 0) return arrow::Status::OK();
    std::vector<std::shared_ptr<arrow::Array>> keys;
    for (int i : key_indices_) keys.push_back(batch->column(i));
    ARROW_ASSIGN_OR_RAISE(auto ids, key_table_->Consume(keys, n));
    const uint32_t num_groups = key_table_->num_groups();
    for (auto& a : accs_) a->Resize(num_groups);
    alive_.resize(num_groups, 0);
    last_access_.resize(num_groups, 0);
    // Touched groups in order of first appearance; those alive before get -U/+U.
    std::vector<uint32_t> touched, existed;
    std::vector<uint8_t> seen(num_groups, 0);
    const uint32_t* gid = ids->raw_values();
    for (int64_t i = 0; i < n; ++i) {
      if (seen[gid[i]]) continue;
      seen[gid[i]] = 1;
      touched.push_back(gid[i]);
      if (alive_[gid[i]]) existed.push_back(gid[i]);
    }
    ARROW_ASSIGN_OR_RAISE(auto before, Results(existed));
    for (size_t i = 0; i < accs_.size(); ++i) {
      const int c = agg_indices_[i];
      auto st = accs_[i]->Consume(c < 0 ? nullptr : batch->column(c), gid, n);
      if (!st.ok()) {
        return st.WithMessage(ctx->operator_name, ": ", o_.aggregates[i].ToString(), ": ",
                              st.message());
      }
    }
    ARROW_ASSIGN_OR_RAISE(auto after, Results(touched));
    // Interleave: rows of `before` are 0..existed-1, rows of `after` follow.
    const int64_t now = o_.state_ttl_ms > 0 ? WallClockMillis() : 0;
    std::vector<int64_t> take;
    std::vector<ChangeOp> ops;
    take.reserve(touched.size() + existed.size());
    int64_t b = 0;
    const int64_t base = static_cast<int64_t>(existed.size());
    for (size_t t = 0; t < touched.size(); ++t) {
      const uint32_t g = touched[t];
      if (alive_[g]) {
        take.push_back(b++);
        ops.push_back(ChangeOp::kUpdateBefore);
        ops.push_back(ChangeOp::kUpdateAfter);
      } else {
        ops.push_back(ChangeOp::kInsert);
        alive_[g] = 1;
      }
      take.push_back(base + static_cast<int64_t>(t));
      last_access_[g] = now;
    }
    std::vector<std::shared_ptr<arrow::Array>> columns;
    for (size_t c = 0; c < before.size(); ++c) {
      ARROW_ASSIGN_OR_RAISE(auto both, arrow::Concatenate({before[c], after[c]}, pool_));
      columns.push_back(std::move(both));
    }
    auto both = arrow::RecordBatch::Make(result_schema_, base + after[0]->length(),
                                         std::move(columns));
    arrow::Int64Builder ib(pool_);
    ARROW_RETURN_NOT_OK(ib.AppendValues(take));
    ARROW_ASSIGN_OR_RAISE(auto indices, ib.Finish());
    ARROW_ASSIGN_OR_RAISE(arrow::Datum taken,
                          cp::Take(both, indices, cp::TakeOptions::Defaults(), exec_));
    ARROW_ASSIGN_OR_RAISE(auto result,
                          MakeChangelogBatch(taken.record_batch(), ops, pool_));
    return out->Emit(std::move(result));
  }

  arrow::Status OnTimer(const Timer& timer, OperatorContext* ctx,
                        Collector* out) override {
    if (timer.key != kTtlTimer) return arrow::Status::OK();
    const int64_t now = WallClockMillis();
    for (uint32_t g = 0; g < alive_.size(); ++g) {
      if (alive_[g] && last_access_[g] + o_.state_ttl_ms <= now) {
        for (auto& a : accs_) a->ResetGroup(g);
        alive_[g] = 0;
      }
    }
    ctx->timers->RegisterProcessingTimeTimer(
        now + std::max<int64_t>(1, o_.state_ttl_ms / 2), kTtlTimer);
    return arrow::Status::OK();
  }

  std::vector<StateDescriptor> state_tables() const override {
    return {{kMetaTable, "operator"}, {"groups", "keyed"}};
  }

 private:
  arrow::Status Restore(OperatorContext* ctx) {
    ARROW_ASSIGN_OR_RAISE(auto metas, ReadInstanceMeta(ctx->restore));
    auto schema = MetaSchema(metas, "input");
    if (!schema) return arrow::Status::OK();
    ARROW_RETURN_NOT_OK(Init(*schema, ctx));
    ARROW_ASSIGN_OR_RAISE(auto batch, ReadKeyedTable(ctx->restore, "groups", pool_));
    if (!batch) return arrow::Status::OK();
    const std::string& name = ctx->operator_name;
    const int64_t n = batch->num_rows();
    ARROW_ASSIGN_OR_RAISE(auto keys, StateKeys(*batch, o_.keys.size(), name));
    ARROW_ASSIGN_OR_RAISE(auto access, StateInt64(*batch, "last_access", name));
    ARROW_ASSIGN_OR_RAISE(auto ids, key_table_->Consume(keys, n));
    const uint32_t num_groups = key_table_->num_groups();
    for (auto& a : accs_) a->Resize(num_groups);
    alive_.resize(num_groups, 0);
    last_access_.resize(num_groups, 0);
    for (int64_t i = 0; i < n; ++i) {
      const uint32_t g = ids->Value(i);
      alive_[g] = 1;
      last_access_[g] = std::max(last_access_[g], access->Value(i));
    }
    return MergeAccumulators(*batch, accs_, ids->raw_values(), name);
  }

  arrow::Status Init(const arrow::Schema& schema, OperatorContext* ctx) {
    input_schema_ = std::make_shared<arrow::Schema>(schema);
    pool_ = ctx->pool;
    exec_ = ctx->exec_context;
    const std::string& name = ctx->operator_name;
    std::vector<std::shared_ptr<arrow::DataType>> key_types;
    arrow::FieldVector fields;
    ARROW_ASSIGN_OR_RAISE(key_indices_, ResolveKeyColumns(schema, o_.keys, name));
    for (int i : key_indices_) {
      key_types.push_back(schema.field(i)->type());
      fields.push_back(schema.field(i));
    }
    ARROW_ASSIGN_OR_RAISE(agg_indices_,
                          ResolveAggregateColumns(schema, o_.aggregates, name));
    for (size_t i = 0; i < o_.aggregates.size(); ++i) {
      const int c = agg_indices_[i];
      auto acc = MakeAccumulator(o_.aggregates[i],
                                 c < 0 ? nullptr : schema.field(c)->type(), pool_);
      if (!acc.ok()) return acc.status().WithMessage(name, ": ", acc.status().message());
      ARROW_ASSIGN_OR_RAISE(auto empty, (*acc)->Finalize({}));
      fields.push_back(arrow::field(o_.aggregates[i].output, empty->type()));
      accs_.push_back(acc.MoveValueUnsafe());
    }
    std::set<std::string> names{kChangeOpColumn};
    for (const auto& f : fields) {
      if (!names.insert(f->name()).second) {
        return arrow::Status::Invalid(name, ": output column '", f->name(),
                                      "' appears twice (keys, aggregates and _op must "
                                      "have distinct names)");
      }
    }
    result_schema_ = arrow::schema(fields);
    output_schema_ = ChangelogSchema(result_schema_);
    ARROW_ASSIGN_OR_RAISE(key_table_, KeyTable::Make(key_types, true, exec_, pool_));
    return arrow::Status::OK();
  }

  // Key columns and aggregate results of `groups`.
  arrow::Result<std::vector<std::shared_ptr<arrow::Array>>> Results(
      const std::vector<uint32_t>& groups) {
    ARROW_ASSIGN_OR_RAISE(auto columns, key_table_->KeysOf(groups));
    for (auto& a : accs_) {
      ARROW_ASSIGN_OR_RAISE(auto r, a->Finalize(groups));
      columns.push_back(std::move(r));
    }
    return columns;
  }

  const GroupAggregateOptions& o_;
  arrow::MemoryPool* pool_ = nullptr;
  cp::ExecContext* exec_ = nullptr;
  std::vector<int> key_indices_, agg_indices_;
  std::unique_ptr<KeyTable> key_table_;
  std::vector<std::unique_ptr<Accumulator>> accs_;
  std::vector<uint8_t> alive_;
  std::vector<int64_t> last_access_;
  std::shared_ptr<arrow::Schema> input_schema_, result_schema_, output_schema_;
};

}  // namespace

void RegisterGroupAggregate(OperatorRegistry* registry) {
  ARROW_CHECK_OK(registry->AddOperator(
      "group_aggregate",
      [](const PlanNode& node, int, int) -> arrow::Result<std::unique_ptr<Operator>> {
        const auto& o = node.options_as<GroupAggregateOptions>();
        if (o.aggregates.empty())
          return arrow::Status::Invalid(node.name, ": no aggregates given");
        if (o.state_ttl_ms < 0)
          return arrow::Status::Invalid(node.name, ": negative state TTL");
        return std::make_unique<GroupAggregateOperator>(o);
      }));
}

}  // namespace sabot
