#include "sabot/state/keyed_state.h"

#include <arrow/array/builder_primitive.h>
#include <arrow/compute/api_vector.h>

namespace sabot {

// --- StateHandle ----------------------------------------------------------------------

arrow::Result<int> StateHandle::DeclareIn(KeyedStateBackend* backend, std::string name,
                                          StateType type, StateTtlConfig ttl) {
  if (!backend) return arrow::Status::Invalid("state '", name, "': no state backend");
  return backend->Declare(StateSpec{std::move(name), type, ttl});
}

arrow::Status StateHandle::Read(const std::vector<std::string_view>& keys,
                                ValueBatch* out) const {
  ARROW_RETURN_NOT_OK(backend_->MultiGet(id_, keys, out));
  const StateTtlConfig& ttl = spec().ttl;
  if (!ttl.enabled()) return arrow::Status::OK();
  const int64_t now = backend_->NowMs();
  const bool refresh = ttl.update == StateTtlConfig::Update::kOnReadAndWrite;
  StateWriteBatch fix;
  for (size_t i = 0; i < out->size(); ++i) {
    if (!out->found(i)) continue;
    std::string_view stored = out->value(i);
    if (stored.size() < kTtlHeaderBytes) {
      return arrow::Status::Invalid("corrupt value of state '", spec().name,
                                    "' (no TTL header)");
    }
    if (IsExpired(ReadExpiry(stored), now)) {
      out->SetAbsent(i);
      fix.Delete(id_, keys[i]);
      continue;
    }
    if (refresh) fix.Put(id_, keys[i], stored.substr(kTtlHeaderBytes), now + ttl.ttl_ms);
    out->SkipPrefix(i, kTtlHeaderBytes);
  }
  if (!fix.empty()) ARROW_RETURN_NOT_OK(backend_->Write(fix));
  return arrow::Status::OK();
}

arrow::Status StateHandle::Clear(const KeyBatch& keys) {
  StateWriteBatch batch;
  const bool map = spec().type == StateType::kMap;
  for (int64_t k = 0; k < keys.num_keys(); ++k) {
    if (map) {
      batch.DeletePrefix(id_, MapEntryPrefix(keys.storage_key(k)));
    } else {
      batch.Delete(id_, keys.storage_key(k));
    }
  }
  return backend_->Write(batch);
}

arrow::Status ScanLiveMapEntries(KeyedStateBackend* backend, int state,
                                 std::string_view storage_key,
                                 std::vector<std::string>* user_keys,
                                 std::vector<std::string>* values) {
  const StateTtlConfig& ttl = backend->spec(state).ttl;
  const int64_t now = backend->NowMs();
  const bool refresh = ttl.update == StateTtlConfig::Update::kOnReadAndWrite;
  StateWriteBatch fix;
  ARROW_RETURN_NOT_OK(backend->ScanMap(
      state, storage_key,
      [&](std::string_view user_key, std::string_view stored) -> arrow::Status {
        if (ttl.enabled()) {
          if (stored.size() < kTtlHeaderBytes) {
            return arrow::Status::Invalid("corrupt value of state '",
                                          backend->spec(state).name, "' (no TTL header)");
          }
          if (IsExpired(ReadExpiry(stored), now)) {
            fix.Delete(state, MapEntryKey(storage_key, user_key));
            return arrow::Status::OK();
          }
          stored = stored.substr(kTtlHeaderBytes);
          if (refresh) {
            fix.Put(state, MapEntryKey(storage_key, user_key), stored, now + ttl.ttl_ms);
          }
        }
        user_keys->emplace_back(user_key);
        values->emplace_back(stored);
        return arrow::Status::OK();
      }));
  if (!fix.empty()) ARROW_RETURN_NOT_OK(backend->Write(fix));
  return arrow::Status::OK();
}

namespace {

arrow::Status CheckRows(const StateHandle& h, const KeyBatch& keys,
                        const arrow::Array& values, const char* what) {
  if (values.length() != keys.num_rows()) {
    return arrow::Status::Invalid("state '", h.spec().name, "': ", values.length(), " ",
                                  what, " for ", keys.num_rows(), " keys");
  }
  return arrow::Status::OK();
}

arrow::Result<std::shared_ptr<arrow::Array>> TakeRows(
    const std::shared_ptr<arrow::Array>& per_key, const KeyBatch& keys,
    arrow::MemoryPool* pool) {
  arrow::Int32Builder indices(pool);
  ARROW_RETURN_NOT_OK(indices.AppendValues(keys.row_keys()));
  ARROW_ASSIGN_OR_RAISE(auto index_array, indices.Finish());
  arrow::compute::ExecContext ctx(pool);
  ARROW_ASSIGN_OR_RAISE(
      auto taken,
      arrow::compute::Take(per_key, index_array,
                           arrow::compute::TakeOptions::NoBoundsCheck(), &ctx));
  return taken.make_array();
}

// Encodes values[rows[j]] into one string each.
arrow::Result<std::vector<std::string>> EncodeEach(const ArrowValueCodec& codec,
                                                   const arrow::Array& values,
                                                   const std::vector<int64_t>& rows) {
  std::vector<std::string> out(rows.size());
  std::vector<std::string*> outs;
  outs.reserve(rows.size());
  for (auto& s : out) outs.push_back(&s);
  ARROW_RETURN_NOT_OK(codec.Encode(values, rows, outs));
  return out;
}

std::vector<int64_t> Iota(int64_t n) {
  std::vector<int64_t> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out[i] = i;
  return out;
}

}  // namespace

// --- ArrowValueState ------------------------------------------------------------------

arrow::Result<ArrowValueState> ArrowValueState::Declare(
    KeyedStateBackend* backend, std::string name, std::shared_ptr<arrow::DataType> type,
    StateTtlConfig ttl) {
  ARROW_ASSIGN_OR_RAISE(
      auto codec, ArrowValueCodec::Make(std::move(type), "value state '" + name + "'"));
  ARROW_ASSIGN_OR_RAISE(int id,
                        DeclareIn(backend, std::move(name), StateType::kValue, ttl));
  return ArrowValueState(backend, id,
                         std::make_shared<const ArrowValueCodec>(std::move(codec)));
}

arrow::Result<std::shared_ptr<arrow::Array>> ArrowValueState::Get(
    const KeyBatch& keys, arrow::MemoryPool* pool) const {
  ValueBatch values;
  ARROW_RETURN_NOT_OK(Read(keys.storage_keys(), &values));
  std::vector<std::optional<std::string_view>> views(values.size());
  for (size_t k = 0; k < values.size(); ++k) views[k] = values.get(k);
  return codec_->Decode(views, pool);
}

arrow::Result<std::shared_ptr<arrow::Array>> ArrowValueState::GetRows(
    const KeyBatch& keys, arrow::MemoryPool* pool) const {
  ARROW_ASSIGN_OR_RAISE(auto per_key, Get(keys, pool));
  return TakeRows(per_key, keys, pool);
}

arrow::Status ArrowValueState::PutRows(const KeyBatch& keys, const arrow::Array& values) {
  ARROW_RETURN_NOT_OK(CheckRows(*this, keys, values, "values"));
  const std::vector<int64_t> last = keys.last_rows();
  std::vector<int64_t> rows;
  std::vector<int64_t> row_key;
  for (int64_t k = 0; k < keys.num_keys(); ++k) {
    if (values.IsValid(last[k])) {
      rows.push_back(last[k]);
      row_key.push_back(k);
    }
  }
  ARROW_ASSIGN_OR_RAISE(auto encoded, EncodeEach(*codec_, values, rows));
  StateWriteBatch batch;
  const auto expiry = WriteExpiry();
  size_t j = 0;
  for (int64_t k = 0; k < keys.num_keys(); ++k) {
    if (j < row_key.size() && row_key[j] == k) {
      batch.Put(id_, keys.storage_key(k), encoded[j], expiry);
      ++j;
    } else {
      batch.Delete(id_, keys.storage_key(k));
    }
  }
  return backend_->Write(batch);
}

// --- ArrowListState -------------------------------------------------------------------

arrow::Result<ArrowListState> ArrowListState::Declare(
    KeyedStateBackend* backend, std::string name, std::shared_ptr<arrow::DataType> type,
    StateTtlConfig ttl) {
  ARROW_ASSIGN_OR_RAISE(
      auto codec, ArrowValueCodec::Make(std::move(type), "list state '" + name + "'"));
  ARROW_ASSIGN_OR_RAISE(int id,
                        DeclareIn(backend, std::move(name), StateType::kList, ttl));
  return ArrowListState(backend, id,
                        std::make_shared<const ArrowValueCodec>(std::move(codec)));
}

arrow::Result<std::shared_ptr<arrow::Array>> ArrowListState::GetRows(
    const KeyBatch& keys, arrow::MemoryPool* pool) const {
  ValueBatch values;
  ARROW_RETURN_NOT_OK(Read(keys.storage_keys(), &values));
  std::vector<std::optional<std::string_view>> elements;
  arrow::Int32Builder offsets(pool);
  ARROW_RETURN_NOT_OK(offsets.Append(0));
  for (size_t k = 0; k < values.size(); ++k) {
    if (values.found(k)) {
      bool ok = ForEachListElement(values.value(k), [&](std::string_view element) {
        elements.emplace_back(element);
      });
      if (!ok) return arrow::Status::Invalid("corrupt list in state '", spec().name, "'");
    }
    ARROW_RETURN_NOT_OK(offsets.Append(static_cast<int32_t>(elements.size())));
  }
  ARROW_ASSIGN_OR_RAISE(auto flat, codec_->Decode(elements, pool));
  ARROW_ASSIGN_OR_RAISE(auto offset_array, offsets.Finish());
  ARROW_ASSIGN_OR_RAISE(auto per_key,
                        arrow::ListArray::FromArrays(*offset_array, *flat, pool));
  return TakeRows(per_key, keys, pool);
}

arrow::Status ArrowListState::AddRows(const KeyBatch& keys, const arrow::Array& values) {
  ARROW_RETURN_NOT_OK(CheckRows(*this, keys, values, "values"));
  ARROW_ASSIGN_OR_RAISE(auto encoded, EncodeEach(*codec_, values, Iota(keys.num_rows())));
  std::vector<std::string> per_key(static_cast<size_t>(keys.num_keys()));
  for (int64_t r = 0; r < keys.num_rows(); ++r) {
    AppendListElement(encoded[r], &per_key[keys.row_key(r)]);
  }
  StateWriteBatch batch;
  const auto expiry = WriteExpiry();
  for (int64_t k = 0; k < keys.num_keys(); ++k) {
    batch.Merge(id_, keys.storage_key(k), per_key[k], expiry);
  }
  return backend_->Write(batch);
}

arrow::Status ArrowListState::UpdateRows(const KeyBatch& keys,
                                         const arrow::Array& lists) {
  ARROW_RETURN_NOT_OK(CheckRows(*this, keys, lists, "lists"));
  if (lists.type_id() != arrow::Type::LIST ||
      !static_cast<const arrow::ListType&>(*lists.type())
           .value_type()
           ->Equals(*codec_->type())) {
    return arrow::Status::TypeError("list state '", spec().name, "' takes list<",
                                    codec_->type()->ToString(), ">, not ",
                                    lists.type()->ToString());
  }
  const auto& list_array = static_cast<const arrow::ListArray&>(lists);
  const std::vector<int64_t> last = keys.last_rows();
  StateWriteBatch batch;
  const auto expiry = WriteExpiry();
  std::string payload;
  for (int64_t k = 0; k < keys.num_keys(); ++k) {
    const int64_t row = last[k];
    if (list_array.IsNull(row) || list_array.value_length(row) == 0) {
      batch.Delete(id_, keys.storage_key(k));
      continue;
    }
    std::vector<int64_t> element_rows;
    for (int64_t e = list_array.value_offset(row); e < list_array.value_offset(row + 1);
         ++e) {
      element_rows.push_back(e);
    }
    ARROW_ASSIGN_OR_RAISE(auto encoded,
                          EncodeEach(*codec_, *list_array.values(), element_rows));
    payload.clear();
    for (const auto& e : encoded) AppendListElement(e, &payload);
    batch.Put(id_, keys.storage_key(k), payload, expiry);
  }
  return backend_->Write(batch);
}

// --- ArrowMapState --------------------------------------------------------------------

arrow::Result<ArrowMapState> ArrowMapState::Declare(
    KeyedStateBackend* backend, std::string name,
    std::shared_ptr<arrow::DataType> key_type,
    std::shared_ptr<arrow::DataType> value_type, StateTtlConfig ttl) {
  ARROW_ASSIGN_OR_RAISE(
      auto key_codec,
      ArrowValueCodec::Make(std::move(key_type), "map state '" + name + "'"));
  ARROW_ASSIGN_OR_RAISE(
      auto value_codec,
      ArrowValueCodec::Make(std::move(value_type), "map state '" + name + "'"));
  ARROW_ASSIGN_OR_RAISE(int id,
                        DeclareIn(backend, std::move(name), StateType::kMap, ttl));
  return ArrowMapState(backend, id,
                       std::make_shared<const ArrowValueCodec>(std::move(key_codec)),
                       std::make_shared<const ArrowValueCodec>(std::move(value_codec)));
}

arrow::Status ArrowMapState::EntryKeys(const KeyBatch& keys,
                                       const arrow::Array& user_keys,
                                       std::vector<std::string>* out) const {
  ARROW_RETURN_NOT_OK(CheckRows(*this, keys, user_keys, "user keys"));
  if (user_keys.null_count() > 0) {
    return arrow::Status::Invalid("map state '", spec().name,
                                  "': user keys cannot be null");
  }
  ARROW_ASSIGN_OR_RAISE(auto encoded,
                        EncodeEach(*key_codec_, user_keys, Iota(keys.num_rows())));
  out->clear();
  out->reserve(encoded.size());
  for (int64_t r = 0; r < keys.num_rows(); ++r) {
    out->push_back(MapEntryKey(keys.storage_key(keys.row_key(r)), encoded[r]));
  }
  return arrow::Status::OK();
}

arrow::Result<std::shared_ptr<arrow::Array>> ArrowMapState::GetRows(
    const KeyBatch& keys, const arrow::Array& user_keys, arrow::MemoryPool* pool) const {
  std::vector<std::string> entry_keys;
  ARROW_RETURN_NOT_OK(EntryKeys(keys, user_keys, &entry_keys));
  std::vector<std::string_view> views(entry_keys.begin(), entry_keys.end());
  ValueBatch values;
  ARROW_RETURN_NOT_OK(Read(views, &values));
  std::vector<std::optional<std::string_view>> out(values.size());
  for (size_t i = 0; i < values.size(); ++i) out[i] = values.get(i);
  return value_codec_->Decode(out, pool);
}

arrow::Status ArrowMapState::PutRows(const KeyBatch& keys, const arrow::Array& user_keys,
                                     const arrow::Array& values) {
  ARROW_RETURN_NOT_OK(CheckRows(*this, keys, values, "values"));
  std::vector<std::string> entry_keys;
  ARROW_RETURN_NOT_OK(EntryKeys(keys, user_keys, &entry_keys));
  std::vector<int64_t> rows;
  for (int64_t r = 0; r < keys.num_rows(); ++r) {
    if (values.IsValid(r)) rows.push_back(r);
  }
  ARROW_ASSIGN_OR_RAISE(auto encoded, EncodeEach(*value_codec_, values, rows));
  StateWriteBatch batch;
  const auto expiry = WriteExpiry();
  size_t j = 0;
  for (int64_t r = 0; r < keys.num_rows(); ++r) {
    if (j < rows.size() && rows[j] == r) {
      batch.Put(id_, entry_keys[r], encoded[j++], expiry);
    } else {
      batch.Delete(id_, entry_keys[r]);
    }
  }
  return backend_->Write(batch);
}

arrow::Status ArrowMapState::RemoveRows(const KeyBatch& keys,
                                        const arrow::Array& user_keys) {
  std::vector<std::string> entry_keys;
  ARROW_RETURN_NOT_OK(EntryKeys(keys, user_keys, &entry_keys));
  StateWriteBatch batch;
  for (const auto& k : entry_keys) batch.Delete(id_, k);
  return backend_->Write(batch);
}

arrow::Result<std::shared_ptr<arrow::Array>> ArrowMapState::EntriesRows(
    const KeyBatch& keys, arrow::MemoryPool* pool) const {
  std::vector<std::string> user_keys, values;
  arrow::Int32Builder offsets(pool);
  ARROW_RETURN_NOT_OK(offsets.Append(0));
  for (int64_t k = 0; k < keys.num_keys(); ++k) {
    ARROW_RETURN_NOT_OK(
        ScanLiveMapEntries(backend_, id_, keys.storage_key(k), &user_keys, &values));
    ARROW_RETURN_NOT_OK(offsets.Append(static_cast<int32_t>(user_keys.size())));
  }
  std::vector<std::optional<std::string_view>> key_views(user_keys.begin(),
                                                         user_keys.end());
  std::vector<std::optional<std::string_view>> value_views(values.begin(), values.end());
  ARROW_ASSIGN_OR_RAISE(auto key_array, key_codec_->Decode(key_views, pool));
  ARROW_ASSIGN_OR_RAISE(auto value_array, value_codec_->Decode(value_views, pool));
  ARROW_ASSIGN_OR_RAISE(auto offset_array, offsets.Finish());
  ARROW_ASSIGN_OR_RAISE(auto per_key, arrow::MapArray::FromArrays(offset_array, key_array,
                                                                  value_array, pool));
  return TakeRows(per_key, keys, pool);
}

}  // namespace sabot
