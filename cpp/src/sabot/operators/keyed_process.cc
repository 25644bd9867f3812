#include "sabot/operators/keyed_process.h"

#include <arrow/util/logging.h>

#include "sabot/exec/partitioner.h"
#include "sabot/operators/map.h"

namespace sabot {

std::string KeyedProcessOptions::ToString() const {
  std::string s = "keyed_process(" + description + ", keys [";
  for (size_t i = 0; i < keys.size(); ++i) s += (i ? ", " : "") + keys[i];
  return s + "])";
}

namespace {

arrow::Status CheckOwned(const KeyBatch& keys, const KeyGroupRange& range,
                         const OperatorContext& op) {
  for (int64_t k = 0; k < keys.num_keys(); ++k) {
    if (!range.Contains(keys.key_group(k))) {
      return arrow::Status::Invalid(
          op.operator_name, ": a key of key group ", keys.key_group(k),
          " reached instance ", op.instance_index + 1, " of ", op.parallelism,
          ", which owns key groups [", range.first, ", ", range.last,
          "]: key the stream with key_by() on the state's key columns (with the same "
          "types) before using keyed state");
    }
  }
  return arrow::Status::OK();
}

}  // namespace

arrow::Result<KeyBatch> KeyedProcessContext::EncodeKeys(
    const std::vector<std::shared_ptr<arrow::Array>>& key_columns) const {
  ARROW_ASSIGN_OR_RAISE(
      KeyBatch keys, EncodeKeyColumns(key_columns, backend_->options().max_parallelism));
  ARROW_RETURN_NOT_OK(CheckOwned(keys, backend_->options().key_groups, *op_));
  return keys;
}

namespace {

class KeyedProcessOperator : public Operator {
 public:
  explicit KeyedProcessOperator(const KeyedProcessOptions& o)
      : o_(o), guard_(o.output_schema) {}

  arrow::Status Open(OperatorContext* ctx) override {
    if (!o_.factory) {
      return arrow::Status::Invalid(ctx->operator_name, ": no function factory");
    }
    ARROW_ASSIGN_OR_RAISE(
        backend_, KeyedStateBackend::Make(KeyedStateBackendOptions::FromContext(*ctx)));
    state_ctx_ = std::make_unique<KeyedProcessContext>(backend_.get(), ctx, o_.keys);
    auto made = o_.factory();
    if (!made.ok()) return Wrap(made.status(), ctx, "could not be created");
    fn_ = made.MoveValueUnsafe();
    auto st = fn_->Open(state_ctx_.get());
    if (!st.ok()) return Wrap(st, ctx, "failed to open");
    return backend_->Restore(ctx->restore);
  }

  arrow::Status ProcessBatch(int, const std::shared_ptr<arrow::RecordBatch>& batch,
                             OperatorContext* ctx, Collector* out) override {
    if (!resolved_) {
      ARROW_ASSIGN_OR_RAISE(
          key_indices_, ResolveKeyColumns(*batch->schema(), o_.keys, ctx->operator_name));
      resolved_ = true;
    }
    if (batch->num_rows() == 0) return arrow::Status::OK();
    ARROW_ASSIGN_OR_RAISE(KeyBatch keys,
                          EncodeKeys(*batch, key_indices_, ctx->max_parallelism));
    ARROW_RETURN_NOT_OK(CheckOwned(keys, backend_->options().key_groups, *ctx));
    state_ctx_->set_keys(&keys);
    auto result = fn_->ProcessBatch(batch, state_ctx_.get());
    state_ctx_->set_keys(nullptr);
    if (!result.ok()) return Wrap(result.status(), ctx, "failed");
    return EmitAll(*result, ctx, out);
  }

  arrow::Status Close(OperatorContext* ctx, Collector* out) override {
    if (!fn_) return arrow::Status::OK();
    auto result = fn_->Close(state_ctx_.get());
    if (!result.ok()) return Wrap(result.status(), ctx, "failed to close");
    return EmitAll(*result, ctx, out);
  }

  arrow::Status SnapshotState(SnapshotWriter* writer, OperatorContext* ctx) override {
    return backend_->Snapshot(writer);
  }

  arrow::Status NotifyCheckpointComplete(int64_t checkpoint_id,
                                         OperatorContext* ctx) override {
    return backend_->NotifyCheckpointComplete(checkpoint_id);
  }

  std::vector<StateDescriptor> state_tables() const override {
    std::vector<StateDescriptor> out;
    if (!backend_) return out;
    for (int s = 0; s < backend_->num_states(); ++s) {
      out.push_back({backend_->spec(s).name, StateTypeName(backend_->spec(s).type)});
    }
    return out;
  }

 private:
  arrow::Status Wrap(const arrow::Status& st, OperatorContext* ctx, const char* what) {
    return st.WithMessage(ctx->operator_name, ": ", o_.description, " ", what, ": ",
                          st.message());
  }

  arrow::Status EmitAll(std::vector<std::shared_ptr<arrow::RecordBatch>>& batches,
                        OperatorContext* ctx, Collector* out) {
    for (auto& b : batches) {
      if (!b) continue;
      ARROW_RETURN_NOT_OK(guard_.Check(*b, ctx->operator_name, o_.description.c_str()));
      if (b->num_rows() > 0) ARROW_RETURN_NOT_OK(out->Emit(std::move(b)));
    }
    return arrow::Status::OK();
  }

  const KeyedProcessOptions& o_;
  SchemaGuard guard_;
  std::unique_ptr<KeyedStateBackend> backend_;
  std::unique_ptr<KeyedProcessContext> state_ctx_;
  std::unique_ptr<KeyedProcessFunction> fn_;
  std::vector<int> key_indices_;
  bool resolved_ = false;
};

}  // namespace

void RegisterKeyedProcess(OperatorRegistry* registry) {
  ARROW_CHECK_OK(registry->AddOperator(
      "keyed_process",
      [](const PlanNode& node, int, int) -> arrow::Result<std::unique_ptr<Operator>> {
        return std::make_unique<KeyedProcessOperator>(
            node.options_as<KeyedProcessOptions>());
      }));
}

}  // namespace sabot
