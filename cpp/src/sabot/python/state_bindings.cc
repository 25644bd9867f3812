// Python bindings of keyed state. A Python keyed function runs through the
// keyed_process operator: the GIL is taken once per batch to call the
// function's process_batch; the state handles it calls (get_many, put_many,
// ...) exchange whole Arrow arrays through the C Data Interface and release
// the GIL while the backend works. Key columns passed to a handle are encoded
// once per batch (cached while the same arrays are passed again).
#include "sabot/python/state_bindings.h"

#include <arrow/c/abi.h>
#include <arrow/c/bridge.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <optional>
#include <stdexcept>

#include "sabot/api/datastream.h"
#include "sabot/operators/keyed_process.h"
#include "sabot/python/binding_util.h"
#include "sabot/state/keyed_state.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace sabot {
namespace {

// --- errors and capsules ------------------------------------------------------

[[noreturn]] void Raise(const arrow::Status& st) {
  if (st.IsTypeError()) throw nb::type_error(st.ToString().c_str());
  if (st.IsInvalid() || st.IsKeyError() || st.IsIndexError()) {
    throw nb::value_error(st.ToString().c_str());
  }
  throw std::runtime_error(st.ToString());
}

void Check(const arrow::Status& st) {
  if (!st.ok()) Raise(st);
}

template <typename T>
T Value(arrow::Result<T> r) {
  Check(r.status());
  return r.MoveValueUnsafe();
}

using py::ReleaseArrayCapsule;
using py::ReleaseSchemaCapsule;

template <typename ExportFn>
nb::tuple ToCapsules(ExportFn&& export_fn) {
  auto* c_schema = new ArrowSchema;
  auto* c_array = new ArrowArray;
  c_schema->release = nullptr;
  c_array->release = nullptr;
  auto st = export_fn(c_array, c_schema);
  if (!st.ok()) {
    delete c_schema;
    delete c_array;
    Raise(st);
  }
  nb::object schema_capsule =
      nb::steal(PyCapsule_New(c_schema, "arrow_schema", ReleaseSchemaCapsule));
  nb::object array_capsule =
      nb::steal(PyCapsule_New(c_array, "arrow_array", ReleaseArrayCapsule));
  return nb::make_tuple(schema_capsule, array_capsule);
}

nb::tuple ArrayToCapsules(const std::shared_ptr<arrow::Array>& array) {
  return ToCapsules(
      [&](ArrowArray* a, ArrowSchema* s) { return arrow::ExportArray(*array, a, s); });
}

nb::tuple BatchToCapsules(const std::shared_ptr<arrow::RecordBatch>& batch) {
  return ToCapsules([&](ArrowArray* a, ArrowSchema* s) {
    return arrow::ExportRecordBatch(*batch, a, s);
  });
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> BatchFromCapsules(
    nb::handle pair, const std::string& what) {
  if (!nb::isinstance<nb::tuple>(pair) || nb::len(pair) != 2) {
    return arrow::Status::TypeError(what, " must return a pyarrow.RecordBatch");
  }
  auto* c_schema =
      static_cast<ArrowSchema*>(PyCapsule_GetPointer(pair[0].ptr(), "arrow_schema"));
  auto* c_array =
      static_cast<ArrowArray*>(PyCapsule_GetPointer(pair[1].ptr(), "arrow_array"));
  if (!c_schema || !c_array) {
    PyErr_Clear();
    return arrow::Status::TypeError(what, " must return a pyarrow.RecordBatch");
  }
  return arrow::ImportRecordBatch(c_array, c_schema);
}

std::shared_ptr<arrow::DataType> TypeFromCapsule(nb::handle capsule) {
  auto* c_schema =
      static_cast<ArrowSchema*>(PyCapsule_GetPointer(capsule.ptr(), "arrow_schema"));
  if (!c_schema) {
    PyErr_Clear();
    throw nb::type_error("expected a pyarrow.DataType");
  }
  return Value(arrow::ImportType(c_schema));
}

using py::ArrayFromCapsules;
using py::SchemaFromCapsule;

/// A Python object owned from C++ (destroyed with the GIL held).
struct PyRef {
  explicit PyRef(nb::object o) : obj(new nb::object(std::move(o))) {}
  PyRef(const PyRef& other) {
    nb::gil_scoped_acquire gil;
    obj = new nb::object(*other.obj);
  }
  PyRef& operator=(const PyRef&) = delete;
  ~PyRef() {
    if (!obj || !Py_IsInitialized()) return;  // interpreter gone: leak
    nb::gil_scoped_acquire gil;
    delete obj;
  }
  nb::object* obj = nullptr;
};

arrow::Status StatusFromPython(const nb::python_error& e, const std::string& what) {
  return arrow::Status::ExecutionError(what, " raised ", e.what());
}

// --- the state scope -------------------------------------------------------------

/// What the Python context and its handles share: the operator's state context
/// (null once the operator is gone) and the key cache of the current batch.
struct StateScope {
  KeyedProcessContext* ctx = nullptr;
  std::vector<std::shared_ptr<arrow::Array>> cached_columns;
  std::optional<KeyBatch> cached;

  KeyedProcessContext& Get() const {
    if (!ctx) {
      throw std::runtime_error(
          "keyed state used outside of its function (the operator is not running)");
    }
    return *ctx;
  }
  void NewBatch() {
    cached.reset();
    cached_columns.clear();
  }

  static bool SameArray(const arrow::Array& a, const arrow::Array& b) {
    const auto& x = *a.data();
    const auto& y = *b.data();
    if (x.length != y.length || x.offset != y.offset || !x.type->Equals(*y.type) ||
        x.buffers.size() != y.buffers.size()) {
      return false;
    }
    for (size_t i = 0; i < x.buffers.size(); ++i) {
      const void* p = x.buffers[i] ? x.buffers[i]->data() : nullptr;
      const void* q = y.buffers[i] ? y.buffers[i]->data() : nullptr;
      if (p != q) return false;
    }
    return true;
  }

  /// The keys of `key_capsules` (a list of capsule pairs, one per key column).
  /// Passing the same arrays again (the batch's key columns, typically) reuses
  /// the encoding; the cached arrays are kept alive so their memory cannot be
  /// reused by other arrays meanwhile.
  const KeyBatch& Keys(const nb::list& key_capsules) {
    KeyedProcessContext& c = Get();
    std::vector<std::shared_ptr<arrow::Array>> columns;
    for (nb::handle h : key_capsules) columns.push_back(ArrayFromCapsules(h, "keys"));
    if (columns.size() != c.key_columns().size()) {
      throw nb::value_error(("keys: " + std::to_string(columns.size()) +
                             " key columns given, the stream is keyed by " +
                             std::to_string(c.key_columns().size()))
                                .c_str());
    }
    if (cached && columns.size() == cached_columns.size()) {
      bool same = true;
      for (size_t i = 0; i < columns.size() && same; ++i) {
        same = SameArray(*columns[i], *cached_columns[i]);
      }
      if (same) return *cached;
    }
    arrow::Result<KeyBatch> keys;
    {
      nb::gil_scoped_release release;
      keys = c.EncodeKeys(columns);
    }
    cached = Value(std::move(keys));
    cached_columns = std::move(columns);
    return *cached;
  }
};

StateTtlConfig Ttl(int64_t ttl_ms, bool update_on_read) {
  if (ttl_ms < 0) throw nb::value_error("ttl_ms must be >= 0");
  StateTtlConfig ttl;
  ttl.ttl_ms = ttl_ms;
  ttl.update = update_on_read ? StateTtlConfig::Update::kOnReadAndWrite
                              : StateTtlConfig::Update::kOnCreateAndWrite;
  return ttl;
}

arrow::MemoryPool* PoolOf(const StateScope& scope) { return scope.Get().op()->pool; }

// Runs `fn` (no Python inside) with the GIL released.
template <typename Fn>
auto Released(Fn&& fn) {
  nb::gil_scoped_release release;
  return fn();
}

struct PyValueState {
  std::shared_ptr<StateScope> scope;
  ArrowValueState state;

  nb::tuple Get(const nb::list& keys) {
    const KeyBatch& k = scope->Keys(keys);
    auto pool = PoolOf(*scope);
    return ArrayToCapsules(Value(Released([&] { return state.GetRows(k, pool); })));
  }
  void Put(const nb::list& keys, nb::handle values) {
    const KeyBatch& k = scope->Keys(keys);
    auto v = ArrayFromCapsules(values, "values");
    Check(Released([&] { return state.PutRows(k, *v); }));
  }
  void Clear(const nb::list& keys) {
    const KeyBatch& k = scope->Keys(keys);
    Check(Released([&] { return state.Clear(k); }));
  }
};

struct PyListState {
  std::shared_ptr<StateScope> scope;
  ArrowListState state;

  nb::tuple Get(const nb::list& keys) {
    const KeyBatch& k = scope->Keys(keys);
    auto pool = PoolOf(*scope);
    return ArrayToCapsules(Value(Released([&] { return state.GetRows(k, pool); })));
  }
  void Add(const nb::list& keys, nb::handle values) {
    const KeyBatch& k = scope->Keys(keys);
    auto v = ArrayFromCapsules(values, "values");
    Check(Released([&] { return state.AddRows(k, *v); }));
  }
  void Update(const nb::list& keys, nb::handle lists) {
    const KeyBatch& k = scope->Keys(keys);
    auto v = ArrayFromCapsules(lists, "lists");
    Check(Released([&] { return state.UpdateRows(k, *v); }));
  }
  void Clear(const nb::list& keys) {
    const KeyBatch& k = scope->Keys(keys);
    Check(Released([&] { return state.Clear(k); }));
  }
};

struct PyMapState {
  std::shared_ptr<StateScope> scope;
  ArrowMapState state;

  nb::tuple Get(const nb::list& keys, nb::handle user_keys) {
    const KeyBatch& k = scope->Keys(keys);
    auto u = ArrayFromCapsules(user_keys, "user_keys");
    auto pool = PoolOf(*scope);
    return ArrayToCapsules(Value(Released([&] { return state.GetRows(k, *u, pool); })));
  }
  void Put(const nb::list& keys, nb::handle user_keys, nb::handle values) {
    const KeyBatch& k = scope->Keys(keys);
    auto u = ArrayFromCapsules(user_keys, "user_keys");
    auto v = ArrayFromCapsules(values, "values");
    Check(Released([&] { return state.PutRows(k, *u, *v); }));
  }
  void Remove(const nb::list& keys, nb::handle user_keys) {
    const KeyBatch& k = scope->Keys(keys);
    auto u = ArrayFromCapsules(user_keys, "user_keys");
    Check(Released([&] { return state.RemoveRows(k, *u); }));
  }
  nb::tuple Entries(const nb::list& keys) {
    const KeyBatch& k = scope->Keys(keys);
    auto pool = PoolOf(*scope);
    return ArrayToCapsules(Value(Released([&] { return state.EntriesRows(k, pool); })));
  }
  void Clear(const nb::list& keys) {
    const KeyBatch& k = scope->Keys(keys);
    Check(Released([&] { return state.Clear(k); }));
  }
};

/// The `ctx` a Python keyed function sees (sabot.state.StateContext wraps it).
struct PyStateContext {
  std::shared_ptr<StateScope> scope;

  KeyedStateBackend* backend() const { return scope->Get().backend(); }

  PyValueState ValueStateOf(const std::string& name, nb::handle type, int64_t ttl_ms,
                            bool update_on_read) {
    auto t = TypeFromCapsule(type);
    return PyValueState{scope, Value(ArrowValueState::Declare(
                                   backend(), name, t, Ttl(ttl_ms, update_on_read)))};
  }
  PyListState ListStateOf(const std::string& name, nb::handle type, int64_t ttl_ms,
                          bool update_on_read) {
    auto t = TypeFromCapsule(type);
    return PyListState{scope, Value(ArrowListState::Declare(
                                  backend(), name, t, Ttl(ttl_ms, update_on_read)))};
  }
  PyMapState MapStateOf(const std::string& name, nb::handle key_type,
                        nb::handle value_type, int64_t ttl_ms, bool update_on_read) {
    auto k = TypeFromCapsule(key_type);
    auto v = TypeFromCapsule(value_type);
    return PyMapState{scope, Value(ArrowMapState::Declare(backend(), name, k, v,
                                                          Ttl(ttl_ms, update_on_read)))};
  }
  /// (first row of each distinct key: int64, distinct key of each row: int32).
  nb::tuple KeyIndex(const nb::list& keys) {
    const KeyBatch& k = scope->Keys(keys);
    arrow::Int64Builder first;
    arrow::Int32Builder rows;
    for (int64_t i = 0; i < k.num_keys(); ++i) Check(first.Append(k.first_row(i)));
    Check(rows.AppendValues(k.row_keys()));
    std::shared_ptr<arrow::Array> a, b;
    Check(first.Finish(&a));
    Check(rows.Finish(&b));
    return nb::make_tuple(ArrayToCapsules(a), ArrayToCapsules(b));
  }
};

/// A keyed function written in Python: `adapter` (built by sabot/state.py) has
/// open(ctx), process(ctx, schema_capsule, array_capsule) -> list of capsule
/// pairs, close(ctx) -> list of capsule pairs.
class PythonKeyedFunction : public KeyedProcessFunction {
 public:
  PythonKeyedFunction(nb::object adapter, std::string what)
      : adapter_(std::move(adapter)),
        what_(std::move(what)),
        scope_(std::make_shared<StateScope>()) {}
  ~PythonKeyedFunction() override {
    scope_->ctx = nullptr;  // handles kept by Python now raise instead of crashing
    if (py_ctx_ && Py_IsInitialized()) {
      nb::gil_scoped_acquire gil;
      scope_->NewBatch();
      delete py_ctx_;
    }
  }

  arrow::Status Open(KeyedProcessContext* ctx) override {
    scope_->ctx = ctx;
    nb::gil_scoped_acquire gil;
    try {
      py_ctx_ = new nb::object(nb::cast(PyStateContext{scope_}));
      adapter_.obj->attr("open")(*py_ctx_);
      return arrow::Status::OK();
    } catch (nb::python_error& e) {
      return StatusFromPython(e, what_ + ".open");
    }
  }

  arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>> ProcessBatch(
      const std::shared_ptr<arrow::RecordBatch>& batch, KeyedProcessContext*) override {
    nb::gil_scoped_acquire gil;
    try {
      scope_->NewBatch();
      nb::tuple args = BatchToCapsules(batch);
      nb::object result = adapter_.obj->attr("process")(*py_ctx_, args[0], args[1]);
      auto out = Outputs(result);
      scope_->NewBatch();
      return out;
    } catch (nb::python_error& e) {
      scope_->NewBatch();
      return StatusFromPython(e, what_ + ".process_batch");
    }
  }

  arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>> Close(
      KeyedProcessContext*) override {
    nb::gil_scoped_acquire gil;
    try {
      return Outputs(adapter_.obj->attr("close")(*py_ctx_));
    } catch (nb::python_error& e) {
      return StatusFromPython(e, what_ + ".close");
    }
  }

 private:
  arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>> Outputs(
      nb::handle result) {
    std::vector<std::shared_ptr<arrow::RecordBatch>> out;
    if (result.is_none()) return out;
    for (nb::handle item : result) {
      ARROW_ASSIGN_OR_RAISE(auto b, BatchFromCapsules(item, what_));
      out.push_back(std::move(b));
    }
    return out;
  }

  PyRef adapter_;
  std::string what_;
  std::shared_ptr<StateScope> scope_;
  nb::object* py_ctx_ = nullptr;
};

}  // namespace

void RegisterStateBindings(nb::module_& m) {
  nb::class_<PyValueState>(m, "NativeValueState")
      .def("get", &PyValueState::Get, "keys"_a)
      .def("put", &PyValueState::Put, "keys"_a, "values"_a)
      .def("clear", &PyValueState::Clear, "keys"_a);
  nb::class_<PyListState>(m, "NativeListState")
      .def("get", &PyListState::Get, "keys"_a)
      .def("add", &PyListState::Add, "keys"_a, "values"_a)
      .def("update", &PyListState::Update, "keys"_a, "lists"_a)
      .def("clear", &PyListState::Clear, "keys"_a);
  nb::class_<PyMapState>(m, "NativeMapState")
      .def("get", &PyMapState::Get, "keys"_a, "user_keys"_a)
      .def("put", &PyMapState::Put, "keys"_a, "user_keys"_a, "values"_a)
      .def("remove", &PyMapState::Remove, "keys"_a, "user_keys"_a)
      .def("entries", &PyMapState::Entries, "keys"_a)
      .def("clear", &PyMapState::Clear, "keys"_a);
  nb::class_<PyStateContext>(m, "NativeStateContext")
      .def("value_state", &PyStateContext::ValueStateOf, "name"_a, "type"_a, "ttl_ms"_a,
           "update_on_read"_a)
      .def("list_state", &PyStateContext::ListStateOf, "name"_a, "type"_a, "ttl_ms"_a,
           "update_on_read"_a)
      .def("map_state", &PyStateContext::MapStateOf, "name"_a, "key_type"_a,
           "value_type"_a, "ttl_ms"_a, "update_on_read"_a)
      .def("key_index", &PyStateContext::KeyIndex, "keys"_a)
      .def_prop_ro("key_columns",
                   [](PyStateContext& c) { return c.scope->Get().key_columns(); })
      .def_prop_ro("operator_name",
                   [](PyStateContext& c) { return c.scope->Get().op()->operator_name; })
      .def_prop_ro("instance_index",
                   [](PyStateContext& c) { return c.scope->Get().op()->instance_index; })
      .def_prop_ro("parallelism",
                   [](PyStateContext& c) { return c.scope->Get().op()->parallelism; })
      .def_prop_ro("backend",
                   [](PyStateContext& c) { return std::string(c.backend()->kind()); })
      .def("now_ms", [](PyStateContext& c) { return c.scope->Get().NowMs(); });

  m.def(
      "keyed_process",
      [](const DataStream& stream, nb::dict options, nb::object factory) {
        KeyedProcessOptions o;
        if (options.contains("keys") && !options["keys"].is_none()) {
          o.keys = nb::cast<std::vector<std::string>>(options["keys"]);
        }
        o.description = nb::cast<std::string>(options["what"]);
        if (options.contains("schema") && !options["schema"].is_none()) {
          o.output_schema = SchemaFromCapsule(options["schema"]);
        }
        PyRef make(std::move(factory));
        std::string what = o.description;
        o.factory = [make,
                     what]() -> arrow::Result<std::unique_ptr<KeyedProcessFunction>> {
          nb::gil_scoped_acquire gil;
          try {
            nb::object adapter = (*make.obj)();
            return std::make_unique<PythonKeyedFunction>(std::move(adapter), what);
          } catch (nb::python_error& e) {
            return StatusFromPython(e, what);
          }
        };
        return stream.Process(std::move(o));
      },
      "stream"_a, "options"_a, "factory"_a);

  m.def(
      "set_state_backend",
      [](StreamEnvironment& env, const std::string& backend, const std::string& local_dir,
         int64_t rocksdb_memory_bytes) {
        if (backend != "memory" && backend != "rocksdb") {
          throw nb::value_error(
              ("state backend must be 'memory' or 'rocksdb', not '" + backend + "'")
                  .c_str());
        }
        if (rocksdb_memory_bytes < (1 << 20)) {
          throw nb::value_error("rocksdb_memory_bytes must be at least 1 MiB");
        }
        env.options()->state.backend = backend;
        env.options()->state.local_dir = local_dir;
        env.options()->state.rocksdb_memory_bytes = rocksdb_memory_bytes;
      },
      "env"_a, "backend"_a, "local_dir"_a, "rocksdb_memory_bytes"_a);
}

}  // namespace sabot
