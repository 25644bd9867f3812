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
#include "sabot/python/binding_util.h"
#include "sabot/python/lookup_bindings.h"
#include "sabot/views/http_server.h"
#include "sabot/views/view.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace sabot {
namespace {

using py::ArrayFromCapsules;
using py::BatchToCapsules;
using py::Check;
using py::SchemaToCapsule;
using py::TableToStreamCapsule;
using py::Unwrap;

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
             for (nb::handle h : key) arrays.push_back(ArrayFromCapsules(h, "key"));
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
