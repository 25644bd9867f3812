#include "sabot/python/binding_util.h"

#include <arrow/c/abi.h>
#include <arrow/c/bridge.h>

#include <stdexcept>
#include <string>

namespace nb = nanobind;

namespace sabot::py {

void Check(const arrow::Status& st) {
  if (st.ok()) return;
  if (st.IsInvalid() || st.IsTypeError()) throw nb::value_error(st.ToString().c_str());
  throw std::runtime_error(st.ToString());
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

std::shared_ptr<arrow::Array> ArrayFromCapsules(nb::handle pair, const char* what) {
  const std::string error = std::string(what) + ": expected an Arrow array";
  if (!nb::isinstance<nb::tuple>(pair) || nb::len(pair) != 2) {
    throw nb::type_error(error.c_str());
  }
  auto* c_schema =
      static_cast<ArrowSchema*>(PyCapsule_GetPointer(pair[0].ptr(), "arrow_schema"));
  auto* c_array =
      static_cast<ArrowArray*>(PyCapsule_GetPointer(pair[1].ptr(), "arrow_array"));
  if (!c_schema || !c_array) {
    PyErr_Clear();
    throw nb::type_error(error.c_str());
  }
  return Unwrap(arrow::ImportArray(c_array, c_schema));
}

std::shared_ptr<arrow::Schema> SchemaFromCapsule(nb::handle capsule) {
  auto* c_schema =
      static_cast<ArrowSchema*>(PyCapsule_GetPointer(capsule.ptr(), "arrow_schema"));
  if (!c_schema) {
    PyErr_Clear();
    throw nb::type_error("expected an arrow_schema capsule");
  }
  return Unwrap(arrow::ImportSchema(c_schema));
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

std::shared_ptr<arrow::Table> TableFromStreamCapsule(nb::handle capsule) {
  auto* c_stream = static_cast<ArrowArrayStream*>(
      PyCapsule_GetPointer(capsule.ptr(), "arrow_array_stream"));
  if (!c_stream) {
    PyErr_Clear();
    throw nb::type_error("expected an arrow_array_stream capsule");
  }
  auto reader = Unwrap(arrow::ImportRecordBatchReader(c_stream));
  return Unwrap(reader->ToTable());
}

}  // namespace sabot::py
