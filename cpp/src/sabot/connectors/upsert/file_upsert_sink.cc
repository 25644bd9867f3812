#include <arrow/csv/writer.h>
#include <arrow/io/file.h>
#include <arrow/util/logging.h>
#include <parquet/arrow/writer.h>
#include <parquet/properties.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <map>
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

  ~FileUpsertSink() override {
    // Pre-committed files of checkpoints that never completed.
    for (const auto& [id, path] : pending_) std::remove(path.c_str());
  }

  arrow::Status Open(OperatorContext* ctx) override {
    ARROW_RETURN_NOT_OK(options_.Validate());
    name_ = ctx->operator_name;
    table_ = std::make_unique<MaterializedTable>(
        options_.key_columns, "file_upsert_sink '" + name_ + "'", ctx->pool);
    const std::string ext = options_.format == "parquet" ? "parquet" : "csv";
    const std::string part = "part-" + std::to_string(ctx->instance_index) + "." + ext;
    file_ = (std::filesystem::path(options_.path) / part).string();
    temp_prefix_ = (std::filesystem::path(options_.path) / ("." + part)).string();
    std::error_code ec;
    std::filesystem::create_directories(options_.path, ec);
    if (ec) {
      return arrow::Status::IOError("file_upsert_sink '", name_, "': cannot create '",
                                    options_.path, "': ", ec.message());
    }
    // Temporary files of an earlier, failed run of this instance.
    for (const auto& entry : std::filesystem::directory_iterator(options_.path, ec)) {
      const std::string path = entry.path().string();
      if (path.rfind(temp_prefix_ + ".", 0) == 0 && entry.path().extension() == ".tmp") {
        std::filesystem::remove(entry.path(), ec);
      }
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

  // Pre-commit: the table as of the barrier goes to a temporary file, renamed
  // into place once the checkpoint completed.
  arrow::Status SnapshotState(SnapshotWriter* writer, OperatorContext*) override {
    ARROW_ASSIGN_OR_RAISE(auto rows, table_->Scan());
    if (!rows) return arrow::Status::OK();  // no data yet: no file
    const int64_t id = writer->checkpoint_id();
    const std::string temp = temp_prefix_ + ".chk-" + std::to_string(id) + ".tmp";
    ARROW_RETURN_NOT_OK(WriteFile(*rows, temp));
    pending_[id] = temp;
    if (rows->num_rows() == 0) return arrow::Status::OK();
    ARROW_ASSIGN_OR_RAISE(auto batch, rows->CombineChunksToBatch());
    return writer->WriteKeyed(kRowsTable, std::move(batch), options_.key_columns);
  }

  // Commit: the newest file pre-committed up to `checkpoint_id` becomes the
  // part file; older ones are dropped.
  arrow::Status NotifyCheckpointComplete(int64_t checkpoint_id,
                                         OperatorContext*) override {
    auto end = pending_.upper_bound(checkpoint_id);
    if (end == pending_.begin()) return arrow::Status::OK();
    auto newest = std::prev(end);
    ARROW_RETURN_NOT_OK(Publish(newest->second));
    for (auto it = pending_.begin(); it != newest; ++it) std::remove(it->second.c_str());
    pending_.erase(pending_.begin(), end);
    return arrow::Status::OK();
  }

  // End of input: the final table, at once.
  arrow::Status Close(OperatorContext*, Collector*) override {
    for (const auto& [id, path] : pending_) std::remove(path.c_str());
    pending_.clear();
    ARROW_ASSIGN_OR_RAISE(auto rows, table_->Scan());
    if (!rows) return arrow::Status::OK();
    const std::string temp = temp_prefix_ + ".final.tmp";
    ARROW_RETURN_NOT_OK(WriteFile(*rows, temp));
    return Publish(temp);
  }

  std::vector<StateDescriptor> state_tables() const override {
    return {{kRowsTable, "value"}};
  }

 private:
  arrow::Status WriteFile(const arrow::Table& rows, const std::string& path) {
    auto context = [&](const arrow::Status& st) {
      return st.WithMessage("file_upsert_sink '", name_, "': writing '", path,
                            "': ", st.message());
    };
    auto out = arrow::io::FileOutputStream::Open(path);
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
      std::remove(path.c_str());
      return context(st);
    }
    return arrow::Status::OK();
  }

  // Renames `temp` over the part file (atomic on POSIX file systems).
  arrow::Status Publish(const std::string& temp) {
    if (std::rename(temp.c_str(), file_.c_str()) != 0) {
      return arrow::Status::IOError("file_upsert_sink '", name_, "': renaming '", temp,
                                    "' to '", file_, "': ", std::strerror(errno));
    }
    options_.files_written->fetch_add(1, std::memory_order_relaxed);
    return arrow::Status::OK();
  }

  const FileUpsertSinkOptions& options_;
  std::string name_;
  std::string file_;
  std::string temp_prefix_;                 // ".part-<i>.<ext>" in the output directory
  std::map<int64_t, std::string> pending_;  // checkpoint id -> pre-committed file
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
