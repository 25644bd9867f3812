// map and flat_map: user code over whole batches (C++ functions or Python UDFs).
#pragma once

#include <arrow/record_batch.h>
#include <arrow/result.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sabot/plan/plan.h"
#include "sabot/plan/registry.h"

namespace sabot {

/// A function from one batch to one batch. May be called from any worker thread,
/// never concurrently for one operator instance.
using BatchFunction = std::function<arrow::Result<std::shared_ptr<arrow::RecordBatch>>(
    const std::shared_ptr<arrow::RecordBatch>&)>;
/// A function from one batch to zero or more batches.
using FlatMapFunction =
    std::function<arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>>(
        const std::shared_ptr<arrow::RecordBatch>&)>;

/// Options of "map". Every output batch must have one schema: `output_schema` when
/// given, otherwise the schema of the first output.
struct MapOptions : NodeOptions {
  BatchFunction fn;
  std::string description = "batch function";
  std::shared_ptr<arrow::Schema> output_schema;
  std::string ToString() const override { return "map(" + description + ")"; }
};

/// Options of "flat_map"; same schema rule as MapOptions.
struct FlatMapOptions : NodeOptions {
  FlatMapFunction fn;
  std::string description = "batch function";
  std::shared_ptr<arrow::Schema> output_schema;
  std::string ToString() const override { return "flat_map(" + description + ")"; }
};

/// Checks that `batch` has the schema the operator's stream has, fixing it on the
/// first batch when none was declared. Errors name the operator and the fields.
class SchemaGuard {
 public:
  explicit SchemaGuard(std::shared_ptr<arrow::Schema> declared)
      : schema_(std::move(declared)) {}
  arrow::Status Check(const arrow::RecordBatch& batch, const std::string& operator_name,
                      const char* what);

 private:
  std::shared_ptr<arrow::Schema> schema_;
};

void RegisterMapOperators(OperatorRegistry* registry);

}  // namespace sabot
