#include <arrow/csv/writer.h>
#include <arrow/io/file.h>
#include <arrow/util/logging.h>
#include <parquet/arrow/writer.h>
#include <parquet/properties.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <system_error>

#include "sabot/connectors/upsert/upsert_sinks.h"
#include "sabot/exec/operator.h"
#include "sabot/views/materialized_table.h"

namespace sabot {

std::string FileUpsertSinkOptions::ToString() const {
  std::ostringstream s;
  s << "file_upsert_sink(" << path << ", " << format << ", key=";
  for (size_t i = 0; i < key_columns.size(); ++i) s << (i ? "," : "") << key_columns[i];
  s << ")";
  return s.str();
}

arrow::Status FileUpsertSinkOptions::Validate() const {
  if (path.empty()) return arrow::Status::Invalid("file_upsert_sink: no path given");
  if (format != "parquet" && format != "csv") {
    return arrow::Status::Invalid("file_upsert_sink: format must be 'parquet' or 'csv', ",
                                  "not '", format, "'");
  }
  if (key_columns.empty()) {
    return arrow::Status::Invalid(
        "file_upsert_sink: no key columns given (the upsert key)");
  }
  return arrow::Status::OK();
}

namespace {

constexpr char kRowsTable[] = "rows";

class FileUpsertSink : public Operator {
 public:
  explicit FileUpsertSink(const FileUpsertSinkOptions& options) : options_(options) {}

  arrow::Status Open(OperatorContext* ctx) override {
    ARROW_RETURN_NOT_OK(options_.Validate());
    name_ = ctx->operator_name;
    table_ = std::make_unique<MaterializedTable>(
        options_.key_columns, "file_upsert_sink '" + name_ + "'", ctx->pool);
    const std::string ext = options_.format == "parquet" ? "parquet" : "csv";
    file_ = (std::filesystem::path(options_.path) /
             ("part-" + std::to_string(ctx->instance_index) + "." + ext))
                .string();
    temp_ = (std::filesystem::path(options_.path) /
             (".part-" + std::to_string(ctx->instance_index) + "." + ext + ".tmp"))
                .string();
    std::error_code ec;
    std::filesystem::create_directories(options_.path, ec);
    if (ec) {
      return arrow::Status::IOError("file_upsert_sink '", name_, "': cannot create '",
                                    options_.path, "': ", ec.message());
    }
    if (ctx->restore != nullptr) {
      ARROW_ASSIGN_OR_RAISE(auto batches, ctx->restore->ReadKeyed(kRowsTable));
      for (const auto& b : batches) ARROW_RETURN_NOT_OK(table_->Apply(b));
    }
    return arrow::Status::OK();
  }

  arrow::Status ProcessBatch(int, const std::shared_ptr<arrow::RecordBatch>& batch,
                             OperatorContext*, Collector*) override {
    return table_->Apply(batch);
  }

  arrow::Status SnapshotState(SnapshotWriter* writer, OperatorContext*) override {
    ARROW_ASSIGN_OR_RAISE(auto rows, table_->Scan());
    if (!rows) return arrow::Status::OK();  // no data yet: no file
    ARROW_RETURN_NOT_OK(Write(*rows));
    if (rows->num_rows() == 0) return arrow::Status::OK();
    ARROW_ASSIGN_OR_RAISE(auto batch, rows->CombineChunksToBatch());
    return writer->WriteKeyed(kRowsTable, std::move(batch), options_.key_columns);
  }

  arrow::Status Close(OperatorContext*, Collector*) override {
    ARROW_ASSIGN_OR_RAISE(auto rows, table_->Scan());
    if (!rows) return arrow::Status::OK();
    return Write(*rows);
  }

  std::vector<StateDescriptor> state_tables() const override {
    return {{kRowsTable, "value"}};
  }

 private:
  // Writes the whole table to the temporary file, then renames it over the
  // part file (atomic on POSIX file systems).
  arrow::Status Write(const arrow::Table& rows) {
    auto context = [&](const arrow::Status& st) {
      return st.WithMessage("file_upsert_sink '", name_, "': writing '", temp_,
                            "': ", st.message());
    };
    auto out = arrow::io::FileOutputStream::Open(temp_);
    if (!out.ok()) return context(out.status());
    arrow::Status st;
    if (options_.format == "parquet") {
      auto props = parquet::WriterProperties::Builder()
                       .compression(parquet::Compression::SNAPPY)
                       ->build();
      auto arrow_props =
          parquet::ArrowWriterProperties::Builder().store_schema()->build();
      st = parquet::arrow::WriteTable(rows, arrow::default_memory_pool(), *out,
                                      /*chunk_size=*/1 << 20, props, arrow_props);
    } else {
      st = arrow::csv::WriteCSV(rows, arrow::csv::WriteOptions::Defaults(), out->get());
    }
    if (st.ok()) st = (*out)->Close();
    if (!st.ok()) {
      std::remove(temp_.c_str());
      return context(st);
    }
    if (std::rename(temp_.c_str(), file_.c_str()) != 0) {
      return arrow::Status::IOError("file_upsert_sink '", name_, "': renaming '", temp_,
                                    "' to '", file_, "': ", std::strerror(errno));
    }
    options_.files_written->fetch_add(1, std::memory_order_relaxed);
    return arrow::Status::OK();
  }

  const FileUpsertSinkOptions& options_;
  std::string name_;
  std::string file_;
  std::string temp_;
  std::unique_ptr<MaterializedTable> table_;
};

}  // namespace

void RegisterFileUpsertSink(OperatorRegistry* registry) {
  ARROW_CHECK_OK(registry->AddOperator(
      "file_upsert_sink",
      [](const PlanNode& node, int, int) -> arrow::Result<std::unique_ptr<Operator>> {
        const auto& o = node.options_as<FileUpsertSinkOptions>();
        ARROW_RETURN_NOT_OK(o.Validate());
        return std::make_unique<FileUpsertSink>(o);
      }));
}

}  // namespace sabot
