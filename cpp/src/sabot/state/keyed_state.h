// Typed keyed state for user operators: value, list, map, reducing and
// aggregating state, with optional TTL, over a KeyedStateBackend.
//
// Every handle works on the distinct keys of a batch (a KeyBatch, encoded
// once per batch): reads are one MultiGet, writes one StateWriteBatch, so a
// function touching state for a whole batch makes a handful of backend calls,
// not one per row.
//
// Two families:
// - C++ values through a serde (state/value_codec.h StateSerde<T>):
//   ValueState<T>, ListState<T>, MapState<K, V>, ReducingState<T>,
//   AggregatingState<IN, ACC, OUT>; results are one entry per distinct key
//   (index k of KeyBatch), inputs either per distinct key or per row.
// - Arrow arrays (ArrowValueState, ArrowListState, ArrowMapState): values of
//   one Arrow type, read and written as arrays aligned with the batch's rows;
//   what the Python API is built on.
//
// TTL (StateTtlConfig): a write sets expiry = now + ttl; with kOnReadAndWrite
// a read does too. An expired entry is never returned: a read drops it (and
// deletes it), the RocksDB compaction filter and snapshots remove the rest.
// For list state the TTL applies to the whole list (restarted by each append);
// for map state to each entry.
//
/// Threading contract: handles are used on the operator instance's thread,
/// like the backend they point to; they are cheap to copy.
#pragma once

#include <arrow/array.h>
#include <arrow/result.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sabot/state/backend.h"
#include "sabot/state/key_codec.h"
#include "sabot/state/ttl.h"
#include "sabot/state/value_codec.h"

namespace sabot {

/// What every handle shares: one declared state of a backend.
class StateHandle {
 public:
  StateHandle() = default;
  KeyedStateBackend* backend() const { return backend_; }
  int id() const { return id_; }
  const StateSpec& spec() const { return backend_->spec(id_); }
  /// Removes the state of every distinct key of `keys`.
  arrow::Status Clear(const KeyBatch& keys);

 protected:
  StateHandle(KeyedStateBackend* backend, int id) : backend_(backend), id_(id) {}
  static arrow::Result<int> DeclareIn(KeyedStateBackend* backend, std::string name,
                                      StateType type, StateTtlConfig ttl);
  /// Reads stored values under `keys` with TTL applied: expired entries are
  /// absent (and deleted), a read refreshes the expiry when configured, and the
  /// values come without TTL header.
  arrow::Status Read(const std::vector<std::string_view>& keys, ValueBatch* out) const;
  /// The expiry a write stores now (none without TTL).
  std::optional<int64_t> WriteExpiry() const {
    const auto& ttl = spec().ttl;
    if (!ttl.enabled()) return std::nullopt;
    return backend_->NowMs() + ttl.ttl_ms;
  }

  KeyedStateBackend* backend_ = nullptr;
  int id_ = -1;
};

// --- C++ values --------------------------------------------------------------------

/// One value per key.
template <typename T, typename Serde = StateSerde<T>>
class ValueState : public StateHandle {
 public:
  ValueState() = default;
  static arrow::Result<ValueState> Declare(KeyedStateBackend* backend, std::string name,
                                           StateTtlConfig ttl = {}) {
    ARROW_ASSIGN_OR_RAISE(int id,
                          DeclareIn(backend, std::move(name), StateType::kValue, ttl));
    return ValueState(backend, id);
  }
  /// A handle on the already declared value state `id` (reducing and
  /// aggregating state are value states underneath).
  static ValueState Attach(KeyedStateBackend* backend, int id) {
    return ValueState(backend, id);
  }

  /// The value of each distinct key (nullopt: none).
  arrow::Result<std::vector<std::optional<T>>> Get(const KeyBatch& keys) const {
    ValueBatch values;
    ARROW_RETURN_NOT_OK(Read(keys.storage_keys(), &values));
    std::vector<std::optional<T>> out(values.size());
    for (size_t k = 0; k < values.size(); ++k) {
      if (!values.found(k)) continue;
      ARROW_ASSIGN_OR_RAISE(out[k], Serde::Decode(values.value(k)));
    }
    return out;
  }

  /// Sets the value of each distinct key; nullopt clears it.
  arrow::Status Put(const KeyBatch& keys, const std::vector<std::optional<T>>& values) {
    if (static_cast<int64_t>(values.size()) != keys.num_keys()) {
      return arrow::Status::Invalid("state '", spec().name, "': ", values.size(),
                                    " values for ", keys.num_keys(), " keys");
    }
    StateWriteBatch batch;
    const auto expiry = WriteExpiry();
    std::string bytes;
    for (int64_t k = 0; k < keys.num_keys(); ++k) {
      if (!values[k]) {
        batch.Delete(id_, keys.storage_key(k));
        continue;
      }
      bytes.clear();
      Serde::Encode(*values[k], &bytes);
      batch.Put(id_, keys.storage_key(k), bytes, expiry);
    }
    return backend_->Write(batch);
  }

 private:
  ValueState(KeyedStateBackend* backend, int id) : StateHandle(backend, id) {}
};

/// A list of values per key; appends do not read (a RocksDB merge).
template <typename T, typename Serde = StateSerde<T>>
class ListState : public StateHandle {
 public:
  ListState() = default;
  static arrow::Result<ListState> Declare(KeyedStateBackend* backend, std::string name,
                                          StateTtlConfig ttl = {}) {
    ARROW_ASSIGN_OR_RAISE(int id,
                          DeclareIn(backend, std::move(name), StateType::kList, ttl));
    return ListState(backend, id);
  }

  /// The list of each distinct key (empty: none).
  arrow::Result<std::vector<std::vector<T>>> Get(const KeyBatch& keys) const {
    ValueBatch values;
    ARROW_RETURN_NOT_OK(Read(keys.storage_keys(), &values));
    std::vector<std::vector<T>> out(values.size());
    for (size_t k = 0; k < values.size(); ++k) {
      if (!values.found(k)) continue;
      arrow::Status st;
      bool ok = ForEachListElement(values.value(k), [&](std::string_view element) {
        if (!st.ok()) return;
        auto v = Serde::Decode(element);
        if (v.ok()) {
          out[k].push_back(v.MoveValueUnsafe());
        } else {
          st = v.status();
        }
      });
      ARROW_RETURN_NOT_OK(st);
      if (!ok) return arrow::Status::Invalid("corrupt list in state '", spec().name, "'");
    }
    return out;
  }

  /// Appends each row's value to its key's list, in row order
  /// (values.size() == keys.num_rows()).
  arrow::Status AddRows(const KeyBatch& keys, const std::vector<T>& values) {
    if (static_cast<int64_t>(values.size()) != keys.num_rows()) {
      return arrow::Status::Invalid("state '", spec().name, "': ", values.size(),
                                    " values for ", keys.num_rows(), " rows");
    }
    std::vector<std::string> elements(static_cast<size_t>(keys.num_keys()));
    std::string bytes;
    for (int64_t r = 0; r < keys.num_rows(); ++r) {
      bytes.clear();
      Serde::Encode(values[r], &bytes);
      AppendListElement(bytes, &elements[keys.row_key(r)]);
    }
    StateWriteBatch batch;
    const auto expiry = WriteExpiry();
    for (int64_t k = 0; k < keys.num_keys(); ++k) {
      batch.Merge(id_, keys.storage_key(k), elements[k], expiry);
    }
    return backend_->Write(batch);
  }

  /// Replaces the list of each distinct key (an empty list clears it).
  arrow::Status Update(const KeyBatch& keys, const std::vector<std::vector<T>>& lists) {
    if (static_cast<int64_t>(lists.size()) != keys.num_keys()) {
      return arrow::Status::Invalid("state '", spec().name, "': ", lists.size(),
                                    " lists for ", keys.num_keys(), " keys");
    }
    StateWriteBatch batch;
    const auto expiry = WriteExpiry();
    std::string payload, bytes;
    for (int64_t k = 0; k < keys.num_keys(); ++k) {
      if (lists[k].empty()) {
        batch.Delete(id_, keys.storage_key(k));
        continue;
      }
      payload.clear();
      for (const T& v : lists[k]) {
        bytes.clear();
        Serde::Encode(v, &bytes);
        AppendListElement(bytes, &payload);
      }
      batch.Put(id_, keys.storage_key(k), payload, expiry);
    }
    return backend_->Write(batch);
  }

 private:
  ListState(KeyedStateBackend* backend, int id) : StateHandle(backend, id) {}
};

/// A map (user key -> value) per key; each entry has its own TTL.
template <typename K, typename V, typename KeySerde = StateSerde<K>,
          typename ValueSerde = StateSerde<V>>
class MapState : public StateHandle {
 public:
  /// (distinct key index, user key) pairs for Get/Remove.
  using Lookup = std::pair<int64_t, K>;
  struct Entry {
    int64_t key;  ///< distinct key index in the KeyBatch
    K user_key;
    V value;
  };

  MapState() = default;
  static arrow::Result<MapState> Declare(KeyedStateBackend* backend, std::string name,
                                         StateTtlConfig ttl = {}) {
    ARROW_ASSIGN_OR_RAISE(int id,
                          DeclareIn(backend, std::move(name), StateType::kMap, ttl));
    return MapState(backend, id);
  }

  arrow::Result<std::vector<std::optional<V>>> Get(
      const KeyBatch& keys, const std::vector<Lookup>& lookups) const {
    std::vector<std::string> entry_keys;
    ARROW_RETURN_NOT_OK(EntryKeys(keys, lookups, &entry_keys));
    std::vector<std::string_view> views(entry_keys.begin(), entry_keys.end());
    ValueBatch values;
    ARROW_RETURN_NOT_OK(Read(views, &values));
    std::vector<std::optional<V>> out(values.size());
    for (size_t i = 0; i < values.size(); ++i) {
      if (!values.found(i)) continue;
      ARROW_ASSIGN_OR_RAISE(out[i], ValueSerde::Decode(values.value(i)));
    }
    return out;
  }

  arrow::Status Put(const KeyBatch& keys, const std::vector<Entry>& entries) {
    StateWriteBatch batch;
    const auto expiry = WriteExpiry();
    std::string user_key, value;
    for (const auto& e : entries) {
      ARROW_RETURN_NOT_OK(CheckKey(keys, e.key));
      user_key.clear();
      value.clear();
      KeySerde::Encode(e.user_key, &user_key);
      ValueSerde::Encode(e.value, &value);
      batch.Put(id_, MapEntryKey(keys.storage_key(e.key), user_key), value, expiry);
    }
    return backend_->Write(batch);
  }

  arrow::Status Remove(const KeyBatch& keys, const std::vector<Lookup>& lookups) {
    std::vector<std::string> entry_keys;
    ARROW_RETURN_NOT_OK(EntryKeys(keys, lookups, &entry_keys));
    StateWriteBatch batch;
    for (const auto& k : entry_keys) batch.Delete(id_, k);
    return backend_->Write(batch);
  }

  /// The live entries of distinct key `key`.
  arrow::Result<std::vector<std::pair<K, V>>> Entries(const KeyBatch& keys,
                                                      int64_t key) const {
    ARROW_RETURN_NOT_OK(CheckKey(keys, key));
    std::vector<std::pair<K, V>> out;
    std::vector<std::string> raw_keys;
    std::vector<std::string> raw_values;
    ARROW_RETURN_NOT_OK(ScanLive(keys.storage_key(key), &raw_keys, &raw_values));
    for (size_t i = 0; i < raw_keys.size(); ++i) {
      ARROW_ASSIGN_OR_RAISE(K k, KeySerde::Decode(raw_keys[i]));
      ARROW_ASSIGN_OR_RAISE(V v, ValueSerde::Decode(raw_values[i]));
      out.emplace_back(std::move(k), std::move(v));
    }
    return out;
  }

 protected:
  arrow::Status ScanLive(std::string_view storage_key,
                         std::vector<std::string>* user_keys,
                         std::vector<std::string>* values) const;

 private:
  MapState(KeyedStateBackend* backend, int id) : StateHandle(backend, id) {}
  static arrow::Status CheckKey(const KeyBatch& keys, int64_t key) {
    if (key < 0 || key >= keys.num_keys()) {
      return arrow::Status::IndexError("map state: key index ", key, " of ",
                                       keys.num_keys(), " keys");
    }
    return arrow::Status::OK();
  }
  static arrow::Status EntryKeys(const KeyBatch& keys, const std::vector<Lookup>& lookups,
                                 std::vector<std::string>* out) {
    std::string user_key;
    for (const auto& [key, k] : lookups) {
      ARROW_RETURN_NOT_OK(CheckKey(keys, key));
      user_key.clear();
      KeySerde::Encode(k, &user_key);
      out->push_back(MapEntryKey(keys.storage_key(key), user_key));
    }
    return arrow::Status::OK();
  }
};

/// Scans the map entries of one key with TTL applied (shared by the map
/// handles): user keys and payloads of live entries.
arrow::Status ScanLiveMapEntries(KeyedStateBackend* backend, int state,
                                 std::string_view storage_key,
                                 std::vector<std::string>* user_keys,
                                 std::vector<std::string>* values);

template <typename K, typename V, typename KS, typename VS>
arrow::Status MapState<K, V, KS, VS>::ScanLive(std::string_view storage_key,
                                               std::vector<std::string>* user_keys,
                                               std::vector<std::string>* values) const {
  return ScanLiveMapEntries(backend_, id_, storage_key, user_keys, values);
}

/// One value per key, combined with each added value by `reduce`.
template <typename T, typename Serde = StateSerde<T>>
class ReducingState : public StateHandle {
 public:
  using ReduceFunction = std::function<T(const T&, const T&)>;
  ReducingState() = default;
  static arrow::Result<ReducingState> Declare(KeyedStateBackend* backend,
                                              std::string name, ReduceFunction reduce,
                                              StateTtlConfig ttl = {}) {
    ARROW_ASSIGN_OR_RAISE(int id,
                          DeclareIn(backend, std::move(name), StateType::kValue, ttl));
    return ReducingState(backend, id, std::move(reduce));
  }

  arrow::Result<std::vector<std::optional<T>>> Get(const KeyBatch& keys) const {
    return value_.Get(keys);
  }

  /// Folds each row's value into its key's value, in row order (one read and
  /// one write for the batch).
  arrow::Status AddRows(const KeyBatch& keys, const std::vector<T>& values) {
    if (static_cast<int64_t>(values.size()) != keys.num_rows()) {
      return arrow::Status::Invalid("state '", spec().name, "': ", values.size(),
                                    " values for ", keys.num_rows(), " rows");
    }
    ARROW_ASSIGN_OR_RAISE(auto current, value_.Get(keys));
    for (int64_t r = 0; r < keys.num_rows(); ++r) {
      auto& acc = current[keys.row_key(r)];
      acc = acc ? reduce_(*acc, values[r]) : values[r];
    }
    return value_.Put(keys, current);
  }

 private:
  ReducingState(KeyedStateBackend* backend, int id, ReduceFunction reduce)
      : StateHandle(backend, id), reduce_(std::move(reduce)) {
    value_ = ValueState<T, Serde>::Attach(backend, id);
  }
  ReduceFunction reduce_;
  ValueState<T, Serde> value_;
};

/// An aggregate function: an accumulator per key, `add` folds an input into
/// it, `result` reads the output from it.
template <typename IN, typename ACC, typename OUT>
struct AggregateFunction {
  std::function<ACC()> create;
  std::function<void(ACC*, const IN&)> add;
  std::function<OUT(const ACC&)> result;
};

/// One accumulator per key (stored with AccSerde), read as OUT.
template <typename IN, typename ACC, typename OUT, typename AccSerde = StateSerde<ACC>>
class AggregatingState : public StateHandle {
 public:
  AggregatingState() = default;
  static arrow::Result<AggregatingState> Declare(KeyedStateBackend* backend,
                                                 std::string name,
                                                 AggregateFunction<IN, ACC, OUT> function,
                                                 StateTtlConfig ttl = {}) {
    ARROW_ASSIGN_OR_RAISE(int id,
                          DeclareIn(backend, std::move(name), StateType::kValue, ttl));
    return AggregatingState(backend, id, std::move(function));
  }

  arrow::Result<std::vector<std::optional<OUT>>> Get(const KeyBatch& keys) const {
    ARROW_ASSIGN_OR_RAISE(auto accs, value_.Get(keys));
    std::vector<std::optional<OUT>> out(accs.size());
    for (size_t k = 0; k < accs.size(); ++k) {
      if (accs[k]) out[k] = function_.result(*accs[k]);
    }
    return out;
  }

  arrow::Status AddRows(const KeyBatch& keys, const std::vector<IN>& values) {
    if (static_cast<int64_t>(values.size()) != keys.num_rows()) {
      return arrow::Status::Invalid("state '", spec().name, "': ", values.size(),
                                    " values for ", keys.num_rows(), " rows");
    }
    ARROW_ASSIGN_OR_RAISE(auto accs, value_.Get(keys));
    for (int64_t r = 0; r < keys.num_rows(); ++r) {
      auto& acc = accs[keys.row_key(r)];
      if (!acc) acc = function_.create();
      function_.add(&*acc, values[r]);
    }
    return value_.Put(keys, accs);
  }

 private:
  AggregatingState(KeyedStateBackend* backend, int id,
                   AggregateFunction<IN, ACC, OUT> function)
      : StateHandle(backend, id), function_(std::move(function)) {
    value_ = ValueState<ACC, AccSerde>::Attach(backend, id);
  }
  AggregateFunction<IN, ACC, OUT> function_;
  ValueState<ACC, AccSerde> value_;
};

// --- Arrow arrays ----------------------------------------------------------------------

/// One value of an Arrow type per key; arrays aligned with the batch's rows.
class ArrowValueState : public StateHandle {
 public:
  ArrowValueState() = default;
  static arrow::Result<ArrowValueState> Declare(KeyedStateBackend* backend,
                                                std::string name,
                                                std::shared_ptr<arrow::DataType> type,
                                                StateTtlConfig ttl = {});
  const std::shared_ptr<arrow::DataType>& type() const { return codec_->type(); }
  /// One value per distinct key (null: none).
  arrow::Result<std::shared_ptr<arrow::Array>> Get(const KeyBatch& keys,
                                                   arrow::MemoryPool* pool) const;
  /// One value per row (its key's value).
  arrow::Result<std::shared_ptr<arrow::Array>> GetRows(const KeyBatch& keys,
                                                       arrow::MemoryPool* pool) const;
  /// Sets each key's value from `values` (one per row; the last row of a key
  /// wins; a null value clears the key).
  arrow::Status PutRows(const KeyBatch& keys, const arrow::Array& values);

 private:
  ArrowValueState(KeyedStateBackend* backend, int id,
                  std::shared_ptr<const ArrowValueCodec> codec)
      : StateHandle(backend, id), codec_(std::move(codec)) {}
  std::shared_ptr<const ArrowValueCodec> codec_;
};

/// A list of values of an Arrow type per key.
class ArrowListState : public StateHandle {
 public:
  ArrowListState() = default;
  static arrow::Result<ArrowListState> Declare(KeyedStateBackend* backend,
                                               std::string name,
                                               std::shared_ptr<arrow::DataType> type,
                                               StateTtlConfig ttl = {});
  const std::shared_ptr<arrow::DataType>& value_type() const { return codec_->type(); }
  /// One list per row (its key's list; empty when none): list<type>.
  arrow::Result<std::shared_ptr<arrow::Array>> GetRows(const KeyBatch& keys,
                                                       arrow::MemoryPool* pool) const;
  /// Appends each row's value to its key's list, in row order.
  arrow::Status AddRows(const KeyBatch& keys, const arrow::Array& values);
  /// Replaces each key's list by `lists` (list<type>, one per row; the last row
  /// of a key wins; null or empty clears).
  arrow::Status UpdateRows(const KeyBatch& keys, const arrow::Array& lists);

 private:
  ArrowListState(KeyedStateBackend* backend, int id,
                 std::shared_ptr<const ArrowValueCodec> codec)
      : StateHandle(backend, id), codec_(std::move(codec)) {}
  std::shared_ptr<const ArrowValueCodec> codec_;
};

/// A map of user keys to values (both Arrow types) per key.
class ArrowMapState : public StateHandle {
 public:
  ArrowMapState() = default;
  static arrow::Result<ArrowMapState> Declare(KeyedStateBackend* backend,
                                              std::string name,
                                              std::shared_ptr<arrow::DataType> key_type,
                                              std::shared_ptr<arrow::DataType> value_type,
                                              StateTtlConfig ttl = {});
  /// The value of (row's key, user_keys[row]) for each row (null: none).
  arrow::Result<std::shared_ptr<arrow::Array>> GetRows(const KeyBatch& keys,
                                                       const arrow::Array& user_keys,
                                                       arrow::MemoryPool* pool) const;
  /// Puts (row's key, user_keys[row]) -> values[row] for each row, in row
  /// order; a null value removes the entry.
  arrow::Status PutRows(const KeyBatch& keys, const arrow::Array& user_keys,
                        const arrow::Array& values);
  /// Removes (row's key, user_keys[row]) for each row.
  arrow::Status RemoveRows(const KeyBatch& keys, const arrow::Array& user_keys);
  /// Each row's whole map: map<key_type, value_type>.
  arrow::Result<std::shared_ptr<arrow::Array>> EntriesRows(const KeyBatch& keys,
                                                           arrow::MemoryPool* pool) const;

 private:
  ArrowMapState(KeyedStateBackend* backend, int id,
                std::shared_ptr<const ArrowValueCodec> key_codec,
                std::shared_ptr<const ArrowValueCodec> value_codec)
      : StateHandle(backend, id),
        key_codec_(std::move(key_codec)),
        value_codec_(std::move(value_codec)) {}
  arrow::Status EntryKeys(const KeyBatch& keys, const arrow::Array& user_keys,
                          std::vector<std::string>* out) const;
  std::shared_ptr<const ArrowValueCodec> key_codec_, value_codec_;
};

}  // namespace sabot
