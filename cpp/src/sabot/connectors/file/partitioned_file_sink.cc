#include "sabot/connectors/file/partitioned_file_sink.h"

#include <arrow/array/builder_binary.h>
#include <arrow/array/builder_primitive.h>
#include <arrow/compute/api_vector.h>
#include <arrow/compute/cast.h>
#include <arrow/csv/writer.h>
#include <arrow/io/buffered.h>
#include <arrow/io/file.h>
#include <arrow/ipc/writer.h>
#include <arrow/util/compression.h>
#include <arrow/util/logging.h>
#include <fcntl.h>
#include <parquet/arrow/writer.h>
#include <parquet/properties.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <system_error>

#include "sabot/connectors/file/pending_files.h"
#include "sabot/exec/operator.h"
#include "sabot/exec/partitioner.h"
#include "sabot/formats/json_lines.h"
#include "sabot/operators/key_table.h"
#include "sabot/operators/operator_state.h"
#include "sabot/plan/registry.h"

namespace sabot {

namespace fs = std::filesystem;

std::string PartitionedFileSinkOptions::ToString() const {
  std::string out = "{\"path\":";
  AppendJsonString(path, &out);
  out += ",\"format\":";
  AppendJsonString(format, &out);
  out += ",\"partition_by\":[";
  for (size_t i = 0; i < partition_by.size(); ++i) {
    if (i) out += ',';
    AppendJsonString(partition_by[i], &out);
  }
  out += "],\"success_file\":";
  out += success_file ? "true" : "false";
  return out + "}";
}

std::string EscapePartitionValue(const std::string& value) {
  static constexpr std::string_view kEscaped = "\"#%'*/:=?\\\x7f{[]^";
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(value.size());
  for (unsigned char c : value) {
    if (c < 0x20 || kEscaped.find(static_cast<char>(c)) != std::string_view::npos) {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

namespace {

constexpr int64_t kWriteBufferBytes = 256 << 10;

// One open file of one partition.
struct OpenFile {
  std::string temp;
  std::string final;
  std::shared_ptr<arrow::io::OutputStream> stream;
  std::shared_ptr<arrow::ipc::RecordBatchWriter> csv;
  std::unique_ptr<parquet::arrow::FileWriter> parquet;
};

class PartitionedFileSinkOperator : public Operator {
 public:
  PartitionedFileSinkOperator(const PartitionedFileSinkOptions& o, int instance_index)
      : o_(o), instance_index_(instance_index) {}

  ~PartitionedFileSinkOperator() override {
    // A failed job: the in-progress files stay until a restore cleans them up.
    for (auto& f : open_) {
      if (f && f->stream) ARROW_UNUSED(f->stream->Close());
    }
  }

  arrow::Status Open(OperatorContext* ctx) override {
    name_ = ctx->operator_name;
    pool_ = ctx->pool ? ctx->pool : arrow::default_memory_pool();
    parallelism_ = std::max(1, ctx->parallelism);
    exec_context_ =
        ctx->exec_context ? ctx->exec_context : arrow::compute::default_exec_context();
    std::error_code ec;
    fs::create_directories(o_.path, ec);
    if (ec) {
      return arrow::Status::IOError(name_, ": cannot create directory '", o_.path,
                                    "': ", ec.message());
    }
    if (ctx->restore) {
      last_snapshot_ = ctx->restore->checkpoint_id();
      ARROW_ASSIGN_OR_RAISE(auto metas, ReadInstanceMeta(ctx->restore));
      for (const auto& m : metas) {
        auto it = m.values.find("next_file");
        if (it != m.values.end()) next_file_ = std::max(next_file_, it->second);
      }
      ARROW_RETURN_NOT_OK(CommitRestored(ctx->restore));
    }
    return RemoveAbandoned();
  }

  arrow::Status ProcessBatch(int, const std::shared_ptr<arrow::RecordBatch>& batch,
                             OperatorContext* ctx, Collector* out) override {
    const int64_t n = batch->num_rows();
    if (n == 0) return arrow::Status::OK();
    if (!key_table_) ARROW_RETURN_NOT_OK(Init(*batch->schema()));
    std::vector<std::shared_ptr<arrow::Array>> keys;
    for (size_t k = 0; k < partition_indices_.size(); ++k) {
      const auto& column = batch->column(partition_indices_[k]);
      if (column->null_count() > 0) {
        int64_t row = 0;
        while (row < n && !column->IsNull(row)) ++row;
        return arrow::Status::Invalid(name_, ": partition column '", o_.partition_by[k],
                                      "' is null in row ", row, " of a batch (writing '",
                                      o_.path, "')");
      }
      keys.push_back(column);
    }
    ARROW_ASSIGN_OR_RAISE(auto ids, key_table_->Consume(keys, n));
    ARROW_ASSIGN_OR_RAISE(auto data, DataColumns(*batch));
    // The rows of each partition, in order: one scatter pass per column.
    const uint32_t* gid = ids->raw_values();
    if (slot_.size() < key_table_->num_groups())
      slot_.resize(key_table_->num_groups(), -1);
    std::vector<uint32_t> groups;
    std::vector<int32_t> first_row;
    std::vector<int32_t> target(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      int32_t& s = slot_[gid[i]];
      if (s < 0) {
        s = static_cast<int32_t>(groups.size());
        groups.push_back(gid[i]);
        first_row.push_back(static_cast<int32_t>(i));
      }
      target[i] = s;
    }
    for (uint32_t g : groups) slot_[g] = -1;
    std::vector<std::shared_ptr<arrow::RecordBatch>> parts;
    ARROW_RETURN_NOT_OK(SplitByTarget(data, target.data(),
                                      static_cast<int>(groups.size()), pool_, &parts));
    for (size_t g = 0; g < groups.size(); ++g) {
      ARROW_RETURN_NOT_OK(Write(groups[g], *batch, first_row[g], *parts[g]));
    }
    return out->Emit(batch);
  }

  /// Rolls: every open file is finished under its in-progress name and
  /// recorded, with the files of earlier checkpoints not yet committed, as
  /// pending.
  arrow::Status SnapshotState(SnapshotWriter* writer, OperatorContext* ctx) override {
    const int64_t id = writer->checkpoint_id();
    ARROW_RETURN_NOT_OK(FinishAll(id));
    last_snapshot_ = id;
    InstanceMeta meta;
    meta.instance_index = instance_index_;
    meta.parallelism = parallelism_;
    meta.values["next_file"] = next_file_;
    ARROW_RETURN_NOT_OK(WriteInstanceMeta(writer, meta));
    ARROW_ASSIGN_OR_RAISE(auto batch,
                          PendingFilesBatch(pending_, instance_index_, pool_));
    return writer->WriteOperatorState(kPartitionedFileSinkPendingState, batch);
  }

  arrow::Status NotifyCheckpointComplete(int64_t checkpoint_id,
                                         OperatorContext* ctx) override {
    auto end = pending_.upper_bound(checkpoint_id);
    for (auto it = pending_.begin(); it != end; ++it) {
      for (const auto& f : it->second) ARROW_RETURN_NOT_OK(Rename(f, it->first));
    }
    pending_.erase(pending_.begin(), end);
    return arrow::Status::OK();
  }

  arrow::Status Close(OperatorContext* ctx, Collector* out) override {
    if (closed_) return arrow::Status::OK();
    closed_ = true;
    ARROW_RETURN_NOT_OK(FinishAll(last_snapshot_ + 1));
    ARROW_RETURN_NOT_OK(
        NotifyCheckpointComplete(std::numeric_limits<int64_t>::max(), ctx));
    if (!o_.success_file) return arrow::Status::OK();
    for (const auto& dir : written_dirs_) {
      const std::string path = (fs::path(dir) / kSuccessFileName).string();
      std::ofstream f(path, std::ios::binary | std::ios::trunc);
      if (!f) {
        return arrow::Status::IOError(name_, ": cannot write success file '", path, "'");
      }
    }
    return arrow::Status::OK();
  }

 private:
  arrow::Status Init(const arrow::Schema& schema) {
    ARROW_ASSIGN_OR_RAISE(partition_indices_,
                          ResolveKeyColumns(schema, o_.partition_by, name_));
    std::vector<std::shared_ptr<arrow::DataType>> types;
    for (int i : partition_indices_) types.push_back(schema.field(i)->type());
    std::set<int> partition(partition_indices_.begin(), partition_indices_.end());
    arrow::FieldVector fields;
    for (int i = 0; i < schema.num_fields(); ++i) {
      if (partition.count(i)) continue;
      data_indices_.push_back(i);
      auto f = schema.field(i);
      if (o_.format == "csv" && f->type()->id() == arrow::Type::TIMESTAMP)
        f = f->WithType(arrow::utf8());
      fields.push_back(f);
    }
    data_schema_ = arrow::schema(fields);
    ARROW_ASSIGN_OR_RAISE(key_table_, KeyTable::Make(types, false, exec_context_, pool_));
    return arrow::Status::OK();
  }

  /// The written columns of `batch`: without the partition columns; for CSV,
  /// timestamps as their SQL text in UTC (zone dropped, then cast to string).
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> DataColumns(
      const arrow::RecordBatch& batch) const {
    arrow::ArrayVector columns;
    for (int i : data_indices_) {
      auto column = batch.column(i);
      if (o_.format == "csv" && column->type_id() == arrow::Type::TIMESTAMP) {
        const auto& t = static_cast<const arrow::TimestampType&>(*column->type());
        ARROW_ASSIGN_OR_RAISE(
            column,
            arrow::compute::Cast(*column, arrow::timestamp(t.unit()),
                                 arrow::compute::CastOptions::Safe(), exec_context_));
        ARROW_ASSIGN_OR_RAISE(
            column,
            arrow::compute::Cast(*column, arrow::utf8(),
                                 arrow::compute::CastOptions::Safe(), exec_context_));
      }
      columns.push_back(std::move(column));
    }
    return arrow::RecordBatch::Make(data_schema_, batch.num_rows(), std::move(columns));
  }

  /// The directory of partition `group`, from the values of row `row` of `batch`.
  arrow::Result<std::string> PartitionDirectory(const arrow::RecordBatch& batch,
                                                int64_t row) const {
    fs::path dir(o_.path);
    for (size_t k = 0; k < partition_indices_.size(); ++k) {
      ARROW_ASSIGN_OR_RAISE(auto scalar,
                            batch.column(partition_indices_[k])->GetScalar(row));
      std::string text = scalar->ToString();
      if (scalar->type->id() == arrow::Type::TIMESTAMP) {
        ARROW_ASSIGN_OR_RAISE(
            auto cast,
            arrow::compute::Cast(*batch.column(partition_indices_[k])->Slice(row, 1),
                                 arrow::utf8()));
        text = std::static_pointer_cast<arrow::StringArray>(cast)->GetString(0);
      }
      dir /= o_.partition_by[k] + "=" + EscapePartitionValue(text);
    }
    return dir.string();
  }

  arrow::Status Write(uint32_t group, const arrow::RecordBatch& batch, int64_t row,
                      const arrow::RecordBatch& data) {
    if (open_.size() <= group) open_.resize(group + 1);
    if (dirs_.size() <= group) dirs_.resize(group + 1);
    if (dirs_[group].empty()) {
      ARROW_ASSIGN_OR_RAISE(dirs_[group], PartitionDirectory(batch, row));
    }
    if (!open_[group]) ARROW_RETURN_NOT_OK(OpenFileFor(group));
    OpenFile& f = *open_[group];
    arrow::Status st =
        f.csv ? f.csv->WriteRecordBatch(data) : f.parquet->WriteRecordBatch(data);
    if (!st.ok())
      return st.WithMessage(name_, ": cannot write '", f.temp, "': ", st.message());
    return arrow::Status::OK();
  }

  arrow::Status OpenFileFor(uint32_t group) {
    const std::string& dir = dirs_[group];
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) {
      return arrow::Status::IOError(name_, ": cannot create partition directory '", dir,
                                    "': ", ec.message());
    }
    written_dirs_.insert(dir);
    auto f = std::make_unique<OpenFile>();
    const std::string base = "part-" + std::to_string(instance_index_) + "-" +
                             std::to_string(next_file_++) + "." + o_.format;
    f->final = (fs::path(dir) / base).string();
    f->temp = (fs::path(dir) / ("." + base + ".inprogress")).string();
    auto fail = [&](const arrow::Status& st) {
      return st.WithMessage(name_, ": cannot open '", f->temp, "': ", st.message());
    };
    auto raw = arrow::io::FileOutputStream::Open(f->temp);
    if (!raw.ok()) return fail(raw.status());
    auto buffered = arrow::io::BufferedOutputStream::Create(kWriteBufferBytes, pool_,
                                                            *std::move(raw));
    if (!buffered.ok()) return fail(buffered.status());
    f->stream = *std::move(buffered);
    if (o_.format == "csv") {
      auto options = arrow::csv::WriteOptions::Defaults();
      options.include_header = false;
      options.io_context = arrow::io::IOContext(pool_);
      auto writer = arrow::csv::MakeCSVWriter(f->stream, data_schema_, options);
      if (!writer.ok()) return fail(writer.status());
      f->csv = *std::move(writer);
    } else {
      parquet::WriterProperties::Builder properties;
      properties.memory_pool(pool_);
      if (arrow::util::Codec::IsAvailable(arrow::Compression::SNAPPY))
        properties.compression(arrow::Compression::SNAPPY);
      auto arrow_properties =
          parquet::ArrowWriterProperties::Builder().store_schema()->build();
      auto writer = parquet::arrow::FileWriter::Open(
          *data_schema_, pool_, f->stream, properties.build(), arrow_properties);
      if (!writer.ok()) return fail(writer.status());
      f->parquet = *std::move(writer);
    }
    open_[group] = std::move(f);
    return arrow::Status::OK();
  }

  /// Finishes every open file under its in-progress name; pending for `checkpoint`.
  arrow::Status FinishAll(int64_t checkpoint) {
    for (auto& slot : open_) {
      if (!slot) continue;
      OpenFile& f = *slot;
      arrow::Status st = f.csv ? f.csv->Close() : f.parquet->Close();
      if (st.ok()) st = f.stream->Close();
      if (st.ok()) st = SyncPath(f.temp, false);
      if (!st.ok())
        return st.WithMessage(name_, ": cannot finish '", f.temp, "': ", st.message());
      pending_[checkpoint].push_back(PendingFile{f.temp, f.final});
      slot.reset();
    }
    return arrow::Status::OK();
  }

  arrow::Status Rename(const PendingFile& f, int64_t checkpoint) const {
    ARROW_RETURN_NOT_OK(CommitPendingFile(name_, f, checkpoint));
    return SyncPath(fs::path(f.final).parent_path().string(), true);
  }

  arrow::Status CommitRestored(SnapshotReader* restore) {
    return ForEachRestoredPendingFile(
        name_, restore, kPartitionedFileSinkPendingState, instance_index_, parallelism_,
        [&](const PendingFile& f, int64_t checkpoint) {
          written_dirs_.insert(fs::path(f.final).parent_path().string());
          return Rename(f, checkpoint);
        });
  }

  /// Deletes in-progress files (anywhere under the path) of the instances this
  /// one answers for: output of a run that did not finish, produced again.
  arrow::Status RemoveAbandoned() {
    std::error_code ec;
    fs::recursive_directory_iterator it(o_.path, ec);
    if (ec) {
      return arrow::Status::IOError(name_, ": cannot list '", o_.path,
                                    "': ", ec.message());
    }
    std::vector<fs::path> abandoned;
    for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) break;
      const int owner = InProgressInstance(it->path().filename().string());
      if (owner >= 0 && owner % parallelism_ == instance_index_)
        abandoned.push_back(it->path());
    }
    for (const auto& p : abandoned) {
      std::error_code rm;
      fs::remove(p, rm);
      if (rm) {
        return arrow::Status::IOError(name_, ": cannot remove abandoned '", p.string(),
                                      "': ", rm.message());
      }
    }
    return arrow::Status::OK();
  }

  const PartitionedFileSinkOptions& o_;
  const int instance_index_;
  std::string name_ = "partitioned_file_sink";
  arrow::MemoryPool* pool_ = arrow::default_memory_pool();
  arrow::compute::ExecContext* exec_context_ = nullptr;
  int parallelism_ = 1;
  std::vector<int> partition_indices_;
  std::vector<int> data_indices_;
  std::shared_ptr<arrow::Schema> data_schema_;
  std::unique_ptr<KeyTable> key_table_;
  std::vector<int32_t> slot_;                    // per group, scratch of ProcessBatch
  std::vector<std::string> dirs_;                // per group
  std::vector<std::unique_ptr<OpenFile>> open_;  // per group
  std::set<std::string> written_dirs_;
  std::map<int64_t, std::vector<PendingFile>> pending_;
  int64_t next_file_ = 0;
  int64_t last_snapshot_ = 0;
  bool closed_ = false;
};

}  // namespace

void RegisterPartitionedFileSink(OperatorRegistry* registry) {
  ARROW_CHECK_OK(registry->AddOperator(
      "partitioned_file_sink",
      [](const PlanNode& node, int instance_index,
         int) -> arrow::Result<std::unique_ptr<Operator>> {
        const auto& o = node.options_as<PartitionedFileSinkOptions>();
        if (o.path.empty()) return arrow::Status::Invalid(node.name, ": no path given");
        if (o.format != "csv" && o.format != "parquet") {
          return arrow::Status::Invalid(node.name, ": unknown format '", o.format,
                                        "' (expected csv or parquet)");
        }
        if (o.partition_by.empty())
          return arrow::Status::Invalid(node.name, ": no partition columns");
        return std::make_unique<PartitionedFileSinkOperator>(o, instance_index);
      }));
}

}  // namespace sabot
