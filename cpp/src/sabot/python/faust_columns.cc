// Arrow columns -> Python lists in C++ for the Faust layer (see faust_columns.h).
//
// Threading contract: called with the GIL held (it creates Python objects).
#include "sabot/python/faust_columns.h"

#include <arrow/api.h>
#include <arrow/c/bridge.h>
#include <arrow/compute/api.h>
#include <arrow/util/float16.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "sabot/python/binding_util.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace sabot::py {
namespace {

/// New reference to the Python object of row `i` of `a` (not null).
PyObject* Scalar(const arrow::Array& a, int64_t i);

template <typename ArrayT>
PyObject* IntAt(const arrow::Array& a, int64_t i) {
  auto v = static_cast<const ArrayT&>(a).Value(i);
  if constexpr (std::is_signed_v<decltype(v)>) {
    return PyLong_FromLongLong(static_cast<long long>(v));
  } else {
    return PyLong_FromUnsignedLongLong(static_cast<unsigned long long>(v));
  }
}

PyObject* MapRow(const arrow::MapArray& m, int64_t i) {
  PyObject* d = PyDict_New();
  if (!d) return nullptr;
  const arrow::Array& keys = *m.keys();
  const arrow::Array& items = *m.items();
  for (int64_t j = m.value_offset(i); j < m.value_offset(i + 1); ++j) {
    PyObject* k = keys.IsNull(j) ? (Py_INCREF(Py_None), Py_None) : Scalar(keys, j);
    PyObject* v = items.IsNull(j) ? (Py_INCREF(Py_None), Py_None) : Scalar(items, j);
    if (!k || !v || PyDict_SetItem(d, k, v) < 0) {
      Py_XDECREF(k);
      Py_XDECREF(v);
      Py_DECREF(d);
      return nullptr;
    }
    Py_DECREF(k);
    Py_DECREF(v);
  }
  return d;
}

PyObject* Scalar(const arrow::Array& a, int64_t i) {
  using T = arrow::Type;
  switch (a.type_id()) {
    case T::BOOL: {
      PyObject* r =
          static_cast<const arrow::BooleanArray&>(a).Value(i) ? Py_True : Py_False;
      Py_INCREF(r);
      return r;
    }
    case T::INT8:
      return IntAt<arrow::Int8Array>(a, i);
    case T::INT16:
      return IntAt<arrow::Int16Array>(a, i);
    case T::INT32:
    case T::DATE32:
    case T::TIME32:
      return PyLong_FromLongLong(a.data()->GetValues<int32_t>(1)[i]);
    case T::INT64:
    case T::DATE64:
    case T::TIME64:
    case T::TIMESTAMP:
    case T::DURATION:
      return PyLong_FromLongLong(a.data()->GetValues<int64_t>(1)[i]);
    case T::UINT8:
      return IntAt<arrow::UInt8Array>(a, i);
    case T::UINT16:
      return IntAt<arrow::UInt16Array>(a, i);
    case T::UINT32:
      return IntAt<arrow::UInt32Array>(a, i);
    case T::UINT64:
      return IntAt<arrow::UInt64Array>(a, i);
    case T::HALF_FLOAT:
      return PyFloat_FromDouble(arrow::util::Float16::FromBits(
                                    static_cast<const arrow::HalfFloatArray&>(a).Value(i))
                                    .ToDouble());
    case T::FLOAT:
      return PyFloat_FromDouble(static_cast<const arrow::FloatArray&>(a).Value(i));
    case T::DOUBLE:
      return PyFloat_FromDouble(static_cast<const arrow::DoubleArray&>(a).Value(i));
    case T::STRING: {
      auto v = static_cast<const arrow::StringArray&>(a).GetView(i);
      return PyUnicode_FromStringAndSize(v.data(), static_cast<Py_ssize_t>(v.size()));
    }
    case T::LARGE_STRING: {
      auto v = static_cast<const arrow::LargeStringArray&>(a).GetView(i);
      return PyUnicode_FromStringAndSize(v.data(), static_cast<Py_ssize_t>(v.size()));
    }
    case T::BINARY: {
      auto v = static_cast<const arrow::BinaryArray&>(a).GetView(i);
      return PyBytes_FromStringAndSize(v.data(), static_cast<Py_ssize_t>(v.size()));
    }
    case T::LARGE_BINARY: {
      auto v = static_cast<const arrow::LargeBinaryArray&>(a).GetView(i);
      return PyBytes_FromStringAndSize(v.data(), static_cast<Py_ssize_t>(v.size()));
    }
    case T::MAP:
      return MapRow(static_cast<const arrow::MapArray&>(a), i);
    case T::DICTIONARY: {
      const auto& d = static_cast<const arrow::DictionaryArray&>(a);
      int64_t k = d.GetValueIndex(i);
      return Scalar(*d.dictionary(), k);
    }
    default:
      PyErr_Format(PyExc_TypeError, "arrow_to_pylist: unsupported Arrow type %s",
                   a.type()->ToString().c_str());
      return nullptr;
  }
}

bool Supported(const arrow::DataType& t) {
  using T = arrow::Type;
  switch (t.id()) {
    case T::NA:
    case T::BOOL:
    case T::INT8:
    case T::INT16:
    case T::INT32:
    case T::INT64:
    case T::UINT8:
    case T::UINT16:
    case T::UINT32:
    case T::UINT64:
    case T::HALF_FLOAT:
    case T::FLOAT:
    case T::DOUBLE:
    case T::STRING:
    case T::LARGE_STRING:
    case T::BINARY:
    case T::LARGE_BINARY:
    case T::DATE32:
    case T::DATE64:
    case T::TIME32:
    case T::TIME64:
    case T::TIMESTAMP:
    case T::DURATION:
      return true;
    case T::MAP: {
      const auto& m = static_cast<const arrow::MapType&>(t);
      return Supported(*m.key_type()) && Supported(*m.item_type());
    }
    case T::DICTIONARY:
      return Supported(*static_cast<const arrow::DictionaryType&>(t).value_type());
    default:
      return false;
  }
}

std::shared_ptr<arrow::Array> Column(const PolledHandle& h, const std::string& name) {
  auto col = h.messages->GetColumnByName(name);
  if (!col) throw nb::key_error(("KafkaPolled: no column " + name).c_str());
  return col;
}

nb::object Capsules(const std::shared_ptr<arrow::RecordBatch>& b) {
  return b ? BatchToCapsules(b) : nb::none();
}

/// The messages of `h` whose topic is in `topics` (and their decoded rows).
PolledHandle Select(const PolledHandle& h, const std::vector<std::string>& topics) {
  std::unordered_set<std::string> want(topics.begin(), topics.end());
  auto topic = std::static_pointer_cast<arrow::StringArray>(Column(h, "topic"));
  const int64_t n = h.messages->num_rows();
  std::vector<int32_t> new_index(static_cast<size_t>(n), -1);
  arrow::Int32Builder take;
  int32_t kept = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (want.count(std::string(topic->GetView(i)))) {
      new_index[static_cast<size_t>(i)] = kept++;
      Check(take.Append(static_cast<int32_t>(i)));
    }
  }
  std::shared_ptr<arrow::Array> idx = Unwrap(take.Finish());
  PolledHandle out;
  out.warnings = h.warnings;
  out.messages = Unwrap(arrow::compute::Take(h.messages, idx)).record_batch();
  for (const auto& e : h.errors) {
    int32_t j = new_index[static_cast<size_t>(e.message_index)];
    if (j >= 0) out.errors.push_back({j, e.reason});
  }
  if (h.rows) {
    arrow::Int32Builder rows_take, row_msg;
    for (int64_t r = 0; r < h.row_message->length(); ++r) {
      int32_t j = new_index[static_cast<size_t>(h.row_message->Value(r))];
      if (j >= 0) {
        Check(rows_take.Append(static_cast<int32_t>(r)));
        Check(row_msg.Append(j));
      }
    }
    std::shared_ptr<arrow::Array> ridx = Unwrap(rows_take.Finish());
    out.rows = Unwrap(arrow::compute::Take(h.rows, ridx)).record_batch();
    out.row_message =
        std::static_pointer_cast<arrow::Int32Array>(Unwrap(row_msg.Finish()));
  }
  return out;
}

}  // namespace

nb::list ArrayToPyList(const arrow::Array& a) {
  if (!Supported(*a.type())) {
    throw nb::type_error(
        ("arrow_to_pylist: unsupported Arrow type " + a.type()->ToString()).c_str());
  }
  const int64_t n = a.length();
  PyObject* list = PyList_New(static_cast<Py_ssize_t>(n));
  if (!list) throw nb::python_error();
  const bool all_null = a.type_id() == arrow::Type::NA;
  // Runs of equal strings (the topic column) share one str object.
  const auto* strings = a.type_id() == arrow::Type::STRING
                            ? static_cast<const arrow::StringArray*>(&a)
                            : nullptr;
  std::string_view prev_view;
  PyObject* prev = nullptr;
  for (int64_t i = 0; i < n; ++i) {
    PyObject* v;
    if (all_null || a.IsNull(i)) {
      Py_INCREF(Py_None);
      v = Py_None;
    } else if (strings != nullptr && prev != nullptr &&
               strings->GetView(i) == prev_view) {
      Py_INCREF(prev);
      v = prev;
    } else {
      v = Scalar(a, i);
      if (!v) {
        Py_DECREF(list);
        throw nb::python_error();
      }
      if (strings != nullptr) {
        prev = v;  // borrowed: the list holds it
        prev_view = strings->GetView(i);
      }
    }
    PyList_SET_ITEM(list, static_cast<Py_ssize_t>(i), v);
  }
  return nb::steal<nb::list>(list);
}

void RegisterFaustColumns(nb::module_& m) {
  m.def(
      "arrow_to_pylist",
      [](nb::handle array_capsules) {
        auto array = ArrayFromCapsules(array_capsules, "arrow_to_pylist");
        return ArrayToPyList(*array);
      },
      "array"_a,
      "The values of an Arrow array (C Data Interface capsules) as a Python list, "
      "converted in C++ (temporal types as their raw integers).");

  nb::class_<PolledHandle>(m, "KafkaPolled")
      .def_prop_ro("num_rows",
                   [](const PolledHandle& h) { return h.messages->num_rows(); })
      .def(
          "column",
          [](const PolledHandle& h, const std::string& name) {
            return ArrayToPyList(*Column(h, name));
          },
          "name"_a,
          "A message column (topic, partition, offset, timestamp, key, value, "
          "headers) as a Python list.")
      .def("has_column",
           [](const PolledHandle& h, const std::string& name) {
             return h.messages->schema()->GetFieldIndex(name) >= 0;
           })
      .def("positions",
           [](const PolledHandle& h) {
             // (topic, partition) -> the offset after its last message here
             auto topic =
                 std::static_pointer_cast<arrow::StringArray>(Column(h, "topic"));
             auto part =
                 std::static_pointer_cast<arrow::Int32Array>(Column(h, "partition"));
             auto off = std::static_pointer_cast<arrow::Int64Array>(Column(h, "offset"));
             std::vector<std::pair<std::pair<std::string, int32_t>, int64_t>> out;
             for (int64_t i = 0; i < h.messages->num_rows(); ++i) {
               std::string_view t = topic->GetView(i);
               int32_t p = part->Value(i);
               int64_t o = off->Value(i) + 1;
               bool found = false;
               for (auto& e : out) {
                 if (e.first.second == p && e.first.first == t) {
                   if (o > e.second) e.second = o;
                   found = true;
                   break;
                 }
               }
               if (!found) out.push_back({{std::string(t), p}, o});
             }
             nb::dict d;
             for (auto& [tp, o] : out) d[nb::make_tuple(tp.first, tp.second)] = o;
             return d;
           })
      .def_prop_ro("num_decoded",
                   [](const PolledHandle& h) -> int64_t {
                     return h.rows ? h.rows->num_rows() : -1;
                   })
      .def(
          "messages", [](const PolledHandle& h) { return Capsules(h.messages); },
          "The messages batch as (schema, array) capsules.")
      .def(
          "rows", [](const PolledHandle& h) { return Capsules(h.rows); },
          "The decoded rows as (schema, array) capsules, or None.")
      .def(
          "row_columns",
          [](const PolledHandle& h) -> nb::object {
            if (!h.rows) return nb::none();
            nb::dict d;
            for (int c = 0; c < h.rows->num_columns(); ++c) {
              d[nb::str(h.rows->schema()->field(c)->name().c_str())] =
                  ArrayToPyList(*h.rows->column(c));
            }
            return d;
          },
          "The decoded rows as {column: list} (supported types only), or None.")
      .def("select_topics", &Select, "topics"_a,
           "The messages of these topics (and their decoded rows).")
      .def_prop_ro("errors",
                   [](const PolledHandle& h) {
                     nb::list l;
                     for (const auto& e : h.errors)
                       l.append(nb::make_tuple(e.message_index, e.reason));
                     return l;
                   })
      .def_prop_ro("warnings", [](const PolledHandle& h) {
        nb::list l;
        for (const auto& w : h.warnings) l.append(nb::str(w.c_str()));
        return l;
      });
}

}  // namespace sabot::py
