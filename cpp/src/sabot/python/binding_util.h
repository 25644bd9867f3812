// Helpers shared by the nanobind binding files: Status -> Python exception
// translation and Arrow C Data Interface capsule conversions. Binding code
// only (exceptions are thrown; call with the GIL held).
#pragma once

#include <arrow/api.h>
#include <nanobind/nanobind.h>

#include <memory>

namespace sabot::py {

// Throws nb::value_error for Invalid / TypeError statuses, std::runtime_error
// for any other error; does nothing for OK.
void Check(const arrow::Status& st);

template <typename T>
T Unwrap(arrow::Result<T> r) {
  Check(r.status());
  return r.MoveValueUnsafe();
}

// PyCapsule destructors for "arrow_schema", "arrow_array" and
// "arrow_array_stream" capsules: release the C struct (if still owned) and
// free it.
void ReleaseSchemaCapsule(PyObject* capsule);
void ReleaseArrayCapsule(PyObject* capsule);
void ReleaseStreamCapsule(PyObject* capsule);

// Imports an "arrow_schema" capsule (nb::type_error when `capsule` is not one).
std::shared_ptr<arrow::Schema> SchemaFromCapsule(nanobind::handle capsule);

// Imports the (schema capsule, array capsule) pair of __arrow_c_array__ as an
// Array; nb::type_error naming `what` for anything else.
std::shared_ptr<arrow::Array> ArrayFromCapsules(nanobind::handle pair, const char* what);

// Exports `schema` as an "arrow_schema" capsule (errors thrown by Check).
nanobind::object SchemaToCapsule(const std::shared_ptr<arrow::Schema>& schema);

// Exports `batch` as a (schema capsule, array capsule) tuple, the
// __arrow_c_array__ protocol (errors thrown by Check).
nanobind::object BatchToCapsules(const std::shared_ptr<arrow::RecordBatch>& batch);

// Exports `table` as an "arrow_array_stream" capsule (errors thrown by Check).
nanobind::object TableToStreamCapsule(const std::shared_ptr<arrow::Table>& table);

// Reads a whole "arrow_array_stream" capsule into a table; nb::type_error when
// `capsule` is not one, errors of the stream thrown by Check.
std::shared_ptr<arrow::Table> TableFromStreamCapsule(nanobind::handle capsule);

}  // namespace sabot::py
