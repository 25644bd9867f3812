#include "sabot/connectors/file/file_sink.h"

#include <arrow/array/builder_binary.h>
#include <arrow/array/builder_primitive.h>
#include <arrow/csv/writer.h>
#include <arrow/io/buffered.h>
#include <arrow/io/file.h>
#include <arrow/ipc/writer.h>
#include <arrow/util/compression.h>
#include <fcntl.h>
#include <parquet/arrow/writer.h>
#include <parquet/properties.h>
#include <unistd.h>

#include <filesystem>
#include <limits>
#include <map>
#include <system_error>
#include <utility>
#include <vector>

#include "sabot/connectors/file/file_source.h"
#include "sabot/connectors/file/pending_files.h"
#include "sabot/formats/json_lines.h"
#include "sabot/plan/registry.h"

namespace sabot {

namespace fs = std::filesystem;

std::string FileSinkOptions::ToString() const {
  std::string out = "{\"path\":";
  AppendJsonString(path, &out);
  out += ",\"format\":";
  AppendJsonString(format, &out);
  out += "}";
  return out;
}

arrow::Result<std::string> FileSinkExtension(const std::string& format) {
  if (format == "parquet") return std::string("parquet");
  if (format == "csv") return std::string("csv");
  if (format == "jsonl") return std::string("jsonl");
  if (format == "ipc") return std::string("arrow");
  return arrow::Status::Invalid("unknown file format '", format,
                                "' (expected parquet, csv, jsonl or ipc)");
}

namespace {

constexpr int64_t kWriteBufferBytes = 1 << 20;

// One open output file of a given format.
class BatchWriter {
 public:
  virtual ~BatchWriter() = default;
  virtual arrow::Status Write(const arrow::RecordBatch& batch) = 0;
  /// Writes any footer and flushes; the stream is closed by the caller.
  virtual arrow::Status Finish() = 0;
};

class ParquetWriter : public BatchWriter {
 public:
  explicit ParquetWriter(std::unique_ptr<parquet::arrow::FileWriter> writer)
      : writer_(std::move(writer)) {}
  arrow::Status Write(const arrow::RecordBatch& batch) override {
    return writer_->WriteRecordBatch(batch);
  }
  arrow::Status Finish() override { return writer_->Close(); }

 private:
  std::unique_ptr<parquet::arrow::FileWriter> writer_;
};

// CSV and IPC: Arrow's RecordBatchWriter interface.
class ArrowBatchWriter : public BatchWriter {
 public:
  explicit ArrowBatchWriter(std::shared_ptr<arrow::ipc::RecordBatchWriter> writer)
      : writer_(std::move(writer)) {}
  arrow::Status Write(const arrow::RecordBatch& batch) override {
    return writer_->WriteRecordBatch(batch);
  }
  arrow::Status Finish() override { return writer_->Close(); }

 private:
  std::shared_ptr<arrow::ipc::RecordBatchWriter> writer_;
};

class JsonLinesWriter : public BatchWriter {
 public:
  explicit JsonLinesWriter(std::shared_ptr<arrow::io::OutputStream> stream)
      : stream_(std::move(stream)) {}
  arrow::Status Write(const arrow::RecordBatch& batch) override {
    buffer_.clear();  // keeps its capacity from batch to batch
    ARROW_RETURN_NOT_OK(AppendJsonLines(batch, &buffer_));
    return stream_->Write(buffer_.data(), static_cast<int64_t>(buffer_.size()));
  }
  arrow::Status Finish() override { return arrow::Status::OK(); }

 private:
  std::shared_ptr<arrow::io::OutputStream> stream_;
  std::string buffer_;
};

class FileSinkOperator : public Operator {
 public:
  FileSinkOperator(FileSinkOptions options, std::string extension, int instance_index)
      : options_(std::move(options)),
        extension_(std::move(extension)),
        instance_index_(instance_index) {}

  ~FileSinkOperator() override {
    // Not closed (the job failed): the .inprogress file stays until a restore
    // (or the next run) cleans it up.
    writer_.reset();
    if (stream_) ARROW_UNUSED(stream_->Close());
  }

  arrow::Status Open(OperatorContext* ctx) override {
    name_ = ctx->operator_name.empty() ? "file_sink" : ctx->operator_name;
    pool_ = ctx->pool ? ctx->pool : arrow::default_memory_pool();
    parallelism_ = std::max(1, ctx->parallelism);
    if (options_.path.empty()) return arrow::Status::Invalid(name_, ": no path given");
    std::error_code ec;
    fs::create_directories(options_.path, ec);
    if (ec) {
      return arrow::Status::IOError(name_, ": cannot create directory '", options_.path,
                                    "': ", ec.message());
    }
    if (ctx->restore) {
      checkpointed_ = true;
      last_snapshot_ = ctx->restore->checkpoint_id();
      ARROW_RETURN_NOT_OK(CommitRestored(ctx->restore));
    }
    return RemoveAbandoned();
  }

  arrow::Status ProcessBatch(int input, const std::shared_ptr<arrow::RecordBatch>& batch,
                             OperatorContext* ctx, Collector* out) override {
    if (closed_) {
      return arrow::Status::Invalid(name_, ": batch after Close for '", options_.path,
                                    "'");
    }
    if (schema_ && !batch->schema()->Equals(*schema_, /*check_metadata=*/false)) {
      std::string difference = DescribeSchemaDifference(*schema_, *batch->schema());
      if (!difference.empty()) {
        return arrow::Status::Invalid(name_,
                                      ": batch schema differs from the schema of '",
                                      FinalName(/*at_close=*/!checkpointed_),
                                      "' (written as '", temp_path_, "'): ", difference);
      }
    }
    if (!schema_) schema_ = batch->schema();
    if (!writer_) ARROW_RETURN_NOT_OK(OpenWriter());
    arrow::Status st = writer_->Write(*batch);
    if (!st.ok()) return WriteError(st);
    return arrow::Status::OK();
  }

  /// Rolls: the open file is finished under its in-progress name and recorded,
  /// with the files of earlier checkpoints not yet committed, as pending.
  arrow::Status SnapshotState(SnapshotWriter* writer, OperatorContext* ctx) override {
    const int64_t id = writer->checkpoint_id();
    if (checkpointed_ && id <= last_snapshot_) {
      return arrow::Status::Invalid(name_, ": checkpoint id ", id, " is not newer than ",
                                    last_snapshot_,
                                    "; the file sink needs increasing ids");
    }
    checkpointed_ = true;
    if (writer_) {
      ARROW_ASSIGN_OR_RAISE(PendingFile file, FinishFile(FinalName(/*at_close=*/false)));
      pending_[id].push_back(std::move(file));
    }
    last_snapshot_ = id;
    ARROW_ASSIGN_OR_RAISE(auto batch,
                          PendingFilesBatch(pending_, instance_index_, pool_));
    return writer->WriteOperatorState(kFileSinkPendingState, batch);
  }

  /// Renames the files of checkpoints <= checkpoint_id into place.
  arrow::Status NotifyCheckpointComplete(int64_t checkpoint_id,
                                         OperatorContext* ctx) override {
    auto end = pending_.upper_bound(checkpoint_id);
    bool renamed = false;
    for (auto it = pending_.begin(); it != end; ++it) {
      for (const auto& f : it->second) {
        ARROW_RETURN_NOT_OK(Rename(f, it->first));
        renamed = true;
      }
    }
    pending_.erase(pending_.begin(), end);
    if (renamed) ARROW_RETURN_NOT_OK(SyncDirectory());
    return arrow::Status::OK();
  }

  /// End of input: the open file and every pending one are committed.
  arrow::Status Close(OperatorContext* ctx, Collector* out) override {
    if (closed_) return arrow::Status::OK();
    closed_ = true;
    if (writer_) {
      ARROW_ASSIGN_OR_RAISE(PendingFile file, FinishFile(FinalName(/*at_close=*/true)));
      pending_[last_snapshot_ + 1].push_back(std::move(file));
    }
    return NotifyCheckpointComplete(std::numeric_limits<int64_t>::max(), ctx);
  }

 private:
  /// `part-<i>.<ext>` for a job that never checkpointed, else
  /// `part-<i>-<epoch>.<ext>` (epoch: the checkpoint after the one the file
  /// follows; unique per instance as checkpoint ids increase).
  std::string FinalName(bool at_close) const {
    std::string base = "part-";
    base += std::to_string(instance_index_);
    if (checkpointed_ || !at_close) {
      base += '-';
      base += std::to_string(last_snapshot_ + 1);
    }
    base += '.';
    base += extension_;
    return (fs::path(options_.path) / base).string();
  }

  arrow::Status WriteError(const arrow::Status& st) const {
    return st.WithMessage(name_, ": cannot write '", temp_path_, "': ", st.message());
  }

  arrow::Status Rename(const PendingFile& f, int64_t checkpoint) const {
    return CommitPendingFile(name_, f, checkpoint);
  }

  arrow::Status SyncDirectory() const {
    arrow::Status st = SyncPath(options_.path, /*directory=*/true);
    if (!st.ok()) return st.WithMessage(name_, ": ", st.message());
    return arrow::Status::OK();
  }

  /// Finishes the open file under its in-progress name (footer, flush, fsync).
  arrow::Result<PendingFile> FinishFile(std::string final_path) {
    arrow::Status st = writer_->Finish();
    writer_.reset();
    if (st.ok()) st = stream_->Close();
    stream_.reset();
    if (st.ok()) st = SyncPath(temp_path_, /*directory=*/false);
    if (!st.ok()) return WriteError(st);
    PendingFile file{temp_path_, std::move(final_path)};
    temp_path_.clear();
    return file;
  }

  /// After a restore: commits the files the restored checkpoint recorded as
  /// pending for the old instances this one answers for (old instance j goes to
  /// j % parallelism). Their checkpoint is complete, so they are committed.
  arrow::Status CommitRestored(SnapshotReader* restore) {
    bool renamed = false;
    ARROW_RETURN_NOT_OK(ForEachRestoredPendingFile(
        name_, restore, kFileSinkPendingState, instance_index_, parallelism_,
        [&](const PendingFile& f, int64_t checkpoint) {
          renamed = true;
          return Rename(f, checkpoint);
        }));
    if (renamed) ARROW_RETURN_NOT_OK(SyncDirectory());
    return arrow::Status::OK();
  }

  /// Deletes in-progress files of instances this one answers for: written after
  /// the last completed checkpoint by a run that did not finish, they hold
  /// output that is produced again.
  arrow::Status RemoveAbandoned() {
    std::error_code ec;
    fs::directory_iterator it(options_.path, ec);
    if (ec) {
      return arrow::Status::IOError(name_, ": cannot list '", options_.path,
                                    "': ", ec.message());
    }
    for (; it != fs::directory_iterator(); it.increment(ec)) {
      if (ec) break;
      const int owner = InProgressInstance(it->path().filename().string());
      if (owner < 0 || owner % parallelism_ != instance_index_) continue;
      std::error_code rm;
      fs::remove(it->path(), rm);
      if (rm) {
        return arrow::Status::IOError(name_, ": cannot remove abandoned '",
                                      it->path().string(), "': ", rm.message());
      }
    }
    return arrow::Status::OK();
  }

  arrow::Status OpenWriter() {
    // Named by epoch even when the job may never checkpoint (then Close renames
    // it to part-<i>.<ext>): unique per instance across restores.
    const std::string name = fs::path(FinalName(/*at_close=*/false)).filename().string();
    temp_path_ = (fs::path(options_.path) / ("." + name + ".inprogress")).string();
    auto raw = arrow::io::FileOutputStream::Open(temp_path_);
    if (!raw.ok()) return WriteError(raw.status());
    auto buffered = arrow::io::BufferedOutputStream::Create(kWriteBufferBytes, pool_,
                                                            *std::move(raw));
    if (!buffered.ok()) return WriteError(buffered.status());
    stream_ = *std::move(buffered);
    auto writer = MakeWriter();
    if (!writer.ok()) return WriteError(writer.status());
    writer_ = *std::move(writer);
    return arrow::Status::OK();
  }

  arrow::Result<std::unique_ptr<BatchWriter>> MakeWriter() {
    if (options_.format == "parquet") {
      parquet::WriterProperties::Builder properties;
      properties.memory_pool(pool_);
      if (arrow::util::Codec::IsAvailable(arrow::Compression::SNAPPY)) {
        properties.compression(arrow::Compression::SNAPPY);
      }
      // Keep the Arrow schema (e.g. timestamp units, large types) through the file.
      auto arrow_properties =
          parquet::ArrowWriterProperties::Builder().store_schema()->build();
      ARROW_ASSIGN_OR_RAISE(auto writer, parquet::arrow::FileWriter::Open(
                                             *schema_, pool_, stream_, properties.build(),
                                             arrow_properties));
      return std::make_unique<ParquetWriter>(std::move(writer));
    }
    if (options_.format == "csv") {
      auto write_options = arrow::csv::WriteOptions::Defaults();
      write_options.include_header = true;
      write_options.io_context = arrow::io::IOContext(pool_);
      ARROW_ASSIGN_OR_RAISE(auto writer,
                            arrow::csv::MakeCSVWriter(stream_, schema_, write_options));
      return std::make_unique<ArrowBatchWriter>(std::move(writer));
    }
    if (options_.format == "ipc") {
      auto write_options = arrow::ipc::IpcWriteOptions::Defaults();
      write_options.memory_pool = pool_;
      ARROW_ASSIGN_OR_RAISE(auto writer,
                            arrow::ipc::MakeFileWriter(stream_, schema_, write_options));
      return std::make_unique<ArrowBatchWriter>(std::move(writer));
    }
    return std::make_unique<JsonLinesWriter>(stream_);
  }

  const FileSinkOptions options_;
  const std::string extension_;
  const int instance_index_;

  std::string name_ = "file_sink";
  arrow::MemoryPool* pool_ = arrow::default_memory_pool();
  int parallelism_ = 1;
  std::string temp_path_;                  // the open file's in-progress name
  std::shared_ptr<arrow::Schema> schema_;  // of the first batch
  std::shared_ptr<arrow::io::OutputStream> stream_;
  std::unique_ptr<BatchWriter> writer_;
  bool closed_ = false;
  /// A checkpoint was taken or restored: files are named by epoch.
  bool checkpointed_ = false;
  int64_t last_snapshot_ = 0;
  /// checkpoint id -> files finished for it, not yet renamed
  std::map<int64_t, std::vector<PendingFile>> pending_;
};

}  // namespace

arrow::Result<std::unique_ptr<Operator>> MakeFileSink(const FileSinkOptions& options,
                                                      int instance_index) {
  ARROW_ASSIGN_OR_RAISE(std::string extension, FileSinkExtension(options.format));
  if (instance_index < 0) {
    return arrow::Status::Invalid("file_sink: negative instance index ", instance_index);
  }
  return std::make_unique<FileSinkOperator>(options, std::move(extension),
                                            instance_index);
}

void RegisterFileSink(OperatorRegistry* registry) {
  ARROW_WARN_NOT_OK(registry->AddOperator(
                        "file_sink",
                        [](const PlanNode& node, int instance_index,
                           int parallelism) -> arrow::Result<std::unique_ptr<Operator>> {
                          const auto* options =
                              dynamic_cast<const FileSinkOptions*>(node.options.get());
                          if (options == nullptr) {
                            return arrow::Status::Invalid(
                                node.name, ": file_sink needs FileSinkOptions");
                          }
                          auto op = MakeFileSink(*options, instance_index);
                          if (!op.ok()) {
                            return op.status().WithMessage(node.name, ": ",
                                                           op.status().message());
                          }
                          return op;
                        }),
                    "RegisterFileSink");
}

}  // namespace sabot
