// KeyTable: key columns -> dense group ids (0, 1, ...), shared by the keyed
// operators (window_aggregate, group_aggregate, deduplicate, top_n).
//
/// Not thread-safe: owned by one operator instance. Group ids are stable for the
/// life of the table; with no key columns every row gets group 0.
#pragma once

#include <arrow/array.h>
#include <arrow/buffer.h>
#include <arrow/compute/exec.h>
#include <arrow/compute/row/grouper.h>
#include <arrow/result.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "sabot/operators/accumulators.h"

namespace sabot {

class KeyTable {
 public:
  static arrow::Result<std::unique_ptr<KeyTable>> Make(
      const std::vector<std::shared_ptr<arrow::DataType>>& key_types,
      bool keep_key_values, arrow::compute::ExecContext* ctx, arrow::MemoryPool* pool) {
    auto t = std::make_unique<KeyTable>();
    t->pool_ = pool;
    if (!key_types.empty()) {
      std::vector<arrow::TypeHolder> holders(key_types.begin(), key_types.end());
      ARROW_ASSIGN_OR_RAISE(t->grouper_, arrow::compute::Grouper::Make(holders, ctx));
      if (keep_key_values) {
        for (const auto& type : key_types) {
          AggregateSpec first{"first", "key", "key", nullptr};
          ARROW_ASSIGN_OR_RAISE(auto acc, MakeAccumulator(first, type, pool));
          t->key_values_.push_back(std::move(acc));
        }
      }
    }
    return t;
  }

  /// Group id of each row of `keys` (the key columns).
  arrow::Result<std::shared_ptr<arrow::UInt32Array>> Consume(
      const std::vector<std::shared_ptr<arrow::Array>>& keys, int64_t length) {
    if (!grouper_) {
      num_groups_ = std::max<uint32_t>(num_groups_, length > 0 ? 1 : 0);
      ARROW_ASSIGN_OR_RAISE(auto zeros, arrow::AllocateBuffer(length * 4, pool_));
      std::memset(zeros->mutable_data(), 0, static_cast<size_t>(length * 4));
      return std::make_shared<arrow::UInt32Array>(length, std::move(zeros));
    }
    std::vector<arrow::compute::ExecValue> values;
    for (const auto& k : keys) values.emplace_back(*k->data());
    arrow::compute::ExecSpan span(values, length);
    ARROW_ASSIGN_OR_RAISE(arrow::Datum ids, grouper_->Consume(span));
    auto id_array = std::static_pointer_cast<arrow::UInt32Array>(ids.make_array());
    num_groups_ = grouper_->num_groups();
    for (size_t i = 0; i < key_values_.size(); ++i) {
      key_values_[i]->Resize(num_groups_);
      ARROW_RETURN_NOT_OK(
          key_values_[i]->Consume(keys[i], id_array->raw_values(), length));
    }
    return id_array;
  }

  uint32_t num_groups() const { return num_groups_; }
  bool keyed() const { return grouper_ != nullptr; }

  /// Key columns of every group, in id order.
  arrow::Result<std::vector<std::shared_ptr<arrow::Array>>> AllKeys() {
    std::vector<std::shared_ptr<arrow::Array>> out;
    if (!grouper_) return out;
    ARROW_ASSIGN_OR_RAISE(auto uniques, grouper_->GetUniques());
    for (const auto& v : uniques.values) out.push_back(v.make_array());
    return out;
  }

  /// Key columns of `ids` (needs keep_key_values).
  arrow::Result<std::vector<std::shared_ptr<arrow::Array>>> KeysOf(
      const std::vector<uint32_t>& ids) {
    std::vector<std::shared_ptr<arrow::Array>> out;
    for (auto& kv : key_values_) {
      ARROW_ASSIGN_OR_RAISE(auto a, kv->Finalize(ids));
      out.push_back(std::move(a));
    }
    return out;
  }

 private:
  std::unique_ptr<arrow::compute::Grouper> grouper_;
  std::vector<std::unique_ptr<Accumulator>> key_values_;
  uint32_t num_groups_ = 0;
  arrow::MemoryPool* pool_ = nullptr;
};

}  // namespace sabot
