// Python bindings of materialized views (python/sabot/views.py): the view sink,
// View handles (get, scan) and the HTTP server.
#include <arrow/c/abi.h>
#include <arrow/c/bridge.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/unique_ptr.h>
#include <nanobind/stl/vector.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "sabot/api/datastream.h"
#include "sabot/python/lookup_bindings.h"
#include "sabot/views/http_server.h"
#include "sabot/views/view.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace sabot {
namespace {

void Check(const arrow::Status& st) {
  if (st.ok()) return;
  if (st.IsInvalid() || st.IsTypeError()) throw nb::value_error(st.ToString().c_str());
  throw std::runtime_error(st.ToString());
}

template <typename T>
T Unwrap(arrow::Result<T> r) {
  Check(r.status());
  return r.MoveValueUnsafe();
}

void ReleaseSchemaCapsule(PyObject* capsule) {
  auto* schema = static_cast<ArrowSchema*>(PyCapsule_GetPointer(capsule, "arrow_schema"));
  if (schema && schema->release) schema->release(schema);
  delete schema;
}

void ReleaseArrayCapsule(PyObject* capsule) {
  auto* array = static_cast<ArrowArray*>(PyCapsule_GetPointer(capsule, "arrow_array"));
  if (array && array->release) array->release(array);
  delete array;
}

void ReleaseStreamCapsule(PyObject* capsule) {
  auto* stream =
      static_cast<ArrowArrayStream*>(PyCapsule_GetPointer(capsule, "arrow_array_stream"));
  if (stream && stream->release) stream->release(stream);
  delete stream;
}

// A (schema capsule, array capsule) pair from __arrow_c_array__ -> Array.
std::shared_ptr<arrow::Array> ArrayFromCapsules(nb::handle pair) {
  if (!nb::isinstance<nb::tuple>(pair) || nb::len(pair) != 2) {
    throw nb::type_error("expected a (schema, array) capsule pair");
  }
  auto* c_schema =
      static_cast<ArrowSchema*>(PyCapsule_GetPointer(pair[0].ptr(), "arrow_schema"));
  auto* c_array =
      static_cast<ArrowArray*>(PyCapsule_GetPointer(pair[1].ptr(), "arrow_array"));
  if (!c_schema || !c_array) {
    PyErr_Clear();
    throw nb::type_error("expected Arrow C Data Interface capsules");
  }
  return Unwrap(arrow::ImportArray(c_array, c_schema));
}

nb::object BatchToCapsules(const std::shared_ptr<arrow::RecordBatch>& batch) {
  auto* c_schema = new ArrowSchema;
  auto* c_array = new ArrowArray;
  c_schema->release = nullptr;
  c_array->release = nullptr;
  auto st = arrow::ExportRecordBatch(*batch, c_array, c_schema);
  if (!st.ok()) {
    delete c_schema;
    delete c_array;
    Check(st);
  }
  nb::object s = nb::steal(PyCapsule_New(c_schema, "arrow_schema", ReleaseSchemaCapsule));
  nb::object a = nb::steal(PyCapsule_New(c_array, "arrow_array", ReleaseArrayCapsule));
  return nb::make_tuple(s, a);
}

nb::object TableToStreamCapsule(const std::shared_ptr<arrow::Table>& table) {
  auto reader = std::make_shared<arrow::TableBatchReader>(table);
  auto* c_stream = new ArrowArrayStream;
  c_stream->release = nullptr;
  auto st = arrow::ExportRecordBatchReader(reader, c_stream);
  if (!st.ok()) {
    delete c_stream;
    Check(st);
  }
  return nb::steal(PyCapsule_New(c_stream, "arrow_array_stream", ReleaseStreamCapsule));
}

nb::object SchemaToCapsule(const std::shared_ptr<arrow::Schema>& schema) {
  auto* c_schema = new ArrowSchema;
  c_schema->release = nullptr;
  auto st = arrow::ExportSchema(*schema, c_schema);
  if (!st.ok()) {
    delete c_schema;
    Check(st);
  }
  return nb::steal(PyCapsule_New(c_schema, "arrow_schema", ReleaseSchemaCapsule));
}

}  // namespace

void RegisterViewBindings(nb::module_& m) {
  nb::class_<MaterializedView>(m, "View")
      .def_prop_ro("name", &MaterializedView::name)
      .def_prop_ro("keys", &MaterializedView::key_columns)
      .def_prop_ro("num_rows", &MaterializedView::num_rows)
      .def_prop_ro("version", &MaterializedView::version)
      .def_prop_ro("consistency",
                   [](const MaterializedView& v) {
                     return std::string(ViewConsistencyName(v.consistency()));
                   })
      .def_prop_ro("published_checkpoint", &MaterializedView::published_checkpoint)
      .def("schema_capsule",
           [](const MaterializedView& v) -> nb::object {
             auto schema = v.schema();
             return schema ? SchemaToCapsule(schema) : nb::none();
           })
      .def("get",
           [](const MaterializedView& v, nb::list key) -> nb::object {
             std::vector<std::shared_ptr<arrow::Array>> arrays;
             for (nb::handle h : key) arrays.push_back(ArrayFromCapsules(h));
             arrow::Result<std::shared_ptr<arrow::RecordBatch>> row;
             {
               nb::gil_scoped_release release;
               row = v.Get(arrays);
             }
             auto batch = Unwrap(std::move(row));
             return batch ? BatchToCapsules(batch) : nb::none();
           })
      .def("scan", [](const MaterializedView& v) -> nb::object {
        arrow::Result<std::shared_ptr<arrow::Table>> table;
        {
          nb::gil_scoped_release release;
          table = v.Scan();
        }
        auto t = Unwrap(std::move(table));
        return t ? TableToStreamCapsule(t) : nb::none();
      });

  nb::class_<ViewHttpServer>(m, "ViewServer")
      .def_prop_ro("port", &ViewHttpServer::port)
      .def_prop_ro("host", &ViewHttpServer::host)
      .def("stop", [](ViewHttpServer& s) {
        nb::gil_scoped_release release;
        s.Stop();
      });

  m.def(
      "materialize",
      [](const DataStream& stream, std::string name, std::vector<std::string> keys,
         std::string consistency) {
        if (name.empty()) throw nb::value_error("a view needs a name");
        if (keys.empty()) throw nb::value_error("a view needs key columns");
        ViewConsistency c;
        if (consistency == "latest") {
          c = ViewConsistency::kLatest;
        } else if (consistency == "checkpoint") {
          c = ViewConsistency::kCheckpoint;
        } else {
          throw nb::value_error(
              ("consistency must be 'latest' or 'checkpoint', not '" + consistency + "'")
                  .c_str());
        }
        return stream.Materialize(name, std::move(keys), c);
      },
      "stream"_a, "name"_a, "keys"_a, "consistency"_a);
  m.def("find_view", [](std::string name) { return ViewRegistry::Global()->Find(name); });
  m.def("drop_view",
        [](std::string name) { return ViewRegistry::Global()->Remove(name); });
  m.def("list_views", [] {
    std::vector<std::string> names;
    for (const auto& v : ViewRegistry::Global()->List()) names.push_back(v->name());
    return names;
  });
  m.def(
      "serve_views",
      [](std::string host, int port) {
        return Unwrap(ViewHttpServer::Start(host, port, ViewRegistry::Global()));
      },
      "host"_a, "port"_a);
}

}  // namespace sabot
