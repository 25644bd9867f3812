// Python binding of the keyed state backend as a standalone byte store: the
// storage of Faust-style tables (python/sabot/faust/tables.py). A Faust table
// lives in the worker process, outside any running job, so it drives a
// KeyedStateBackend (memory or RocksDB) directly: one value state, storage
// keys [2-byte table partition][key bytes] (the partition takes the place of
// the key group, so a partition's keys are contiguous in RocksDB), values as
// the table's codec wrote them. Recovery replays the changelog into it
// (put_many); tables read and write single keys (get/put/delete), look a key
// up in every partition when no event names one (get_any: one MultiGet), and
// scan everything (items) for iteration.
//
/// Threading contract: a FaustStore belongs to one table and is used from the
/// worker's event-loop thread, with the GIL held (like the backend itself, it
/// is not thread-safe).
#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sabot/python/binding_util.h"
#include "sabot/state/backend.h"
#include "sabot/state/key_codec.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace sabot {
namespace {

class FaustStore {
 public:
  FaustStore(const std::string& backend, const std::string& local_dir,
             const std::string& name) {
    KeyedStateBackendOptions options;
    options.backend = backend;
    options.local_dir = local_dir;
    options.operator_name = "table " + name;
    options.key_groups = KeyGroupRange{0, kMaxKeyGroups - 1};
    options.max_parallelism = kMaxKeyGroups;
    options.clock = WallClockMs;
    backend_ = py::Unwrap(KeyedStateBackend::Make(std::move(options)));
    state_ = py::Unwrap(backend_->Declare(StateSpec{"table", StateType::kValue, {}}));
    name_ = name;
  }

  nb::object Get(int partition, nb::bytes key) {
    std::string storage = StorageKey(partition, key);
    std::vector<std::string_view> keys{storage};
    py::Check(backend_->MultiGet(state_, keys, &values_));
    if (!values_.found(0)) return nb::none();
    std::string_view v = values_.value(0);
    return nb::bytes(v.data(), v.size());
  }

  /// The first partition in [0, partitions) holding `key`: (partition, value) or None.
  nb::object GetAny(int partitions, nb::bytes key) {
    std::vector<std::string> storage;
    storage.reserve(partitions);
    for (int p = 0; p < partitions; ++p) storage.push_back(StorageKey(p, key));
    std::vector<std::string_view> keys(storage.begin(), storage.end());
    py::Check(backend_->MultiGet(state_, keys, &values_));
    for (int p = 0; p < partitions; ++p) {
      if (!values_.found(p)) continue;
      std::string_view v = values_.value(p);
      return nb::make_tuple(p, nb::bytes(v.data(), v.size()));
    }
    return nb::none();
  }

  bool Contains(int partition, nb::bytes key) {
    std::string storage = StorageKey(partition, key);
    std::vector<std::string_view> keys{storage};
    py::Check(backend_->MultiGet(state_, keys, &values_));
    return values_.found(0);
  }

  void Put(int partition, nb::bytes key, nb::bytes value) {
    batch_.Clear();
    batch_.Put(state_, StorageKey(partition, key),
               std::string_view(static_cast<const char*>(value.data()), value.size()));
    py::Check(backend_->Write(batch_));
  }

  void Delete(int partition, nb::bytes key) {
    batch_.Clear();
    batch_.Delete(state_, StorageKey(partition, key));
    py::Check(backend_->Write(batch_));
  }

  /// Applies (partition, key, value or None) in order, in one write.
  void PutMany(const std::vector<std::tuple<int, nb::bytes, nb::object>>& entries) {
    batch_.Clear();
    for (const auto& [partition, key, value] : entries) {
      std::string storage = StorageKey(partition, key);
      if (value.is_none()) {
        batch_.Delete(state_, storage);
      } else {
        nb::bytes v = nb::cast<nb::bytes>(value);
        batch_.Put(state_, storage,
                   std::string_view(static_cast<const char*>(v.data()), v.size()));
      }
    }
    if (!batch_.empty()) py::Check(backend_->Write(batch_));
  }

  /// Every entry: (partition, key, value).
  nb::list Items() {
    nb::list out;
    py::Check(backend_->ForEach(
        state_, [&](std::string_view storage, std::string_view, std::string_view value) {
          int partition = KeyGroupOfStorageKey(storage);
          std::string_view key = storage.substr(kKeyGroupPrefixBytes);
          out.append(nb::make_tuple(partition, nb::bytes(key.data(), key.size()),
                                    nb::bytes(value.data(), value.size())));
          return arrow::Status::OK();
        }));
    return out;
  }

  /// Removes every entry (of one partition when partition >= 0).
  void Clear(int partition) {
    std::vector<std::string> keys;
    py::Check(backend_->ForEach(
        state_, [&](std::string_view storage, std::string_view, std::string_view) {
          if (partition < 0 || KeyGroupOfStorageKey(storage) == partition) {
            keys.emplace_back(storage);
          }
          return arrow::Status::OK();
        }));
    batch_.Clear();
    for (const auto& k : keys) batch_.Delete(state_, k);
    if (!batch_.empty()) py::Check(backend_->Write(batch_));
  }

  std::string kind() const { return backend_->kind(); }
  int64_t MemoryUsageBytes() { return backend_->MemoryUsageBytes(); }
  int64_t ApproximateSizeBytes() { return py::Unwrap(backend_->ApproximateSizeBytes()); }

 private:
  std::string StorageKey(int partition, const nb::bytes& key) const {
    if (partition < 0 || partition >= kMaxKeyGroups) {
      throw nb::value_error(("table '" + name_ + "': partition " +
                             std::to_string(partition) + " is out of range [0, " +
                             std::to_string(kMaxKeyGroups) + ")")
                                .c_str());
    }
    std::string out;
    out.reserve(kKeyGroupPrefixBytes + key.size());
    AppendKeyGroupPrefix(partition, &out);
    out.append(static_cast<const char*>(key.data()), key.size());
    return out;
  }

  std::unique_ptr<KeyedStateBackend> backend_;
  int state_ = 0;
  std::string name_;
  ValueBatch values_;
  StateWriteBatch batch_;
};

}  // namespace

void RegisterFaustStoreBindings(nb::module_& m) {
  nb::class_<FaustStore>(m, "FaustStore")
      .def(nb::init<const std::string&, const std::string&, const std::string&>(),
           "backend"_a, "local_dir"_a, "name"_a)
      .def("get", &FaustStore::Get, "partition"_a, "key"_a)
      .def("get_any", &FaustStore::GetAny, "partitions"_a, "key"_a)
      .def("contains", &FaustStore::Contains, "partition"_a, "key"_a)
      .def("put", &FaustStore::Put, "partition"_a, "key"_a, "value"_a)
      .def("delete", &FaustStore::Delete, "partition"_a, "key"_a)
      .def("put_many", &FaustStore::PutMany, "entries"_a)
      .def("items", &FaustStore::Items)
      .def("clear", &FaustStore::Clear, "partition"_a = -1)
      .def_prop_ro("kind", &FaustStore::kind)
      .def("memory_usage_bytes", &FaustStore::MemoryUsageBytes)
      .def("approximate_size_bytes", &FaustStore::ApproximateSizeBytes);
}

}  // namespace sabot
