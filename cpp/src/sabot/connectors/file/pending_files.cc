#include "sabot/connectors/file/pending_files.h"

#include <arrow/array/array_binary.h>
#include <arrow/array/array_primitive.h>
#include <arrow/array/builder_binary.h>
#include <arrow/array/builder_primitive.h>
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <string_view>
#include <system_error>

namespace sabot {

namespace fs = std::filesystem;

arrow::Status SyncPath(const std::string& path, bool directory) {
  int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0) return arrow::Status::IOError("cannot open '", path, "' to sync it");
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return arrow::Status::IOError("cannot sync '", path, "'");
  return arrow::Status::OK();
}

int InProgressInstance(const std::string& name) {
  static constexpr std::string_view kPrefix = ".part-";
  static constexpr std::string_view kSuffix = ".inprogress";
  if (name.size() <= kPrefix.size() + kSuffix.size() || name.rfind(kPrefix, 0) != 0 ||
      name.compare(name.size() - kSuffix.size(), kSuffix.size(), kSuffix) != 0) {
    return -1;
  }
  size_t i = kPrefix.size();
  int64_t index = 0;
  size_t digits = 0;
  for (; i < name.size() && name[i] >= '0' && name[i] <= '9' && digits < 9;
       ++i, ++digits) {
    index = index * 10 + (name[i] - '0');
  }
  if (digits == 0 || i >= name.size() || (name[i] != '-' && name[i] != '.')) return -1;
  return static_cast<int>(index);
}

std::shared_ptr<arrow::Schema> PendingFilesSchema() {
  static const auto schema =
      arrow::schema({arrow::field("instance", arrow::int32(), false),
                     arrow::field("checkpoint", arrow::int64(), false),
                     arrow::field("inprogress", arrow::utf8(), false),
                     arrow::field("final", arrow::utf8(), false)});
  return schema;
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> PendingFilesBatch(
    const PendingFiles& pending, int32_t instance, arrow::MemoryPool* pool) {
  arrow::Int32Builder instances(pool);
  arrow::Int64Builder checkpoints(pool);
  arrow::StringBuilder temps(pool), finals(pool);
  for (const auto& [checkpoint, files] : pending) {
    for (const auto& f : files) {
      ARROW_RETURN_NOT_OK(instances.Append(instance));
      ARROW_RETURN_NOT_OK(checkpoints.Append(checkpoint));
      ARROW_RETURN_NOT_OK(temps.Append(f.temp));
      ARROW_RETURN_NOT_OK(finals.Append(f.final));
    }
  }
  std::shared_ptr<arrow::Array> a, b, c, d;
  ARROW_RETURN_NOT_OK(instances.Finish(&a));
  ARROW_RETURN_NOT_OK(checkpoints.Finish(&b));
  ARROW_RETURN_NOT_OK(temps.Finish(&c));
  ARROW_RETURN_NOT_OK(finals.Finish(&d));
  return arrow::RecordBatch::Make(PendingFilesSchema(), a->length(), {a, b, c, d});
}

arrow::Status CommitPendingFile(const std::string& sink, const PendingFile& f,
                                int64_t checkpoint) {
  std::error_code ec;
  if (!fs::exists(f.temp, ec) && fs::exists(f.final, ec)) {
    return arrow::Status::OK();  // renamed before a crash
  }
  fs::rename(f.temp, f.final, ec);
  if (ec) {
    return arrow::Status::IOError(sink, ": cannot commit '", f.temp, "' as '", f.final,
                                  "' (checkpoint ", checkpoint, "): ", ec.message());
  }
  return arrow::Status::OK();
}

arrow::Status ForEachRestoredPendingFile(
    const std::string& sink, SnapshotReader* restore, const std::string& table,
    int instance_index, int parallelism,
    const std::function<arrow::Status(const PendingFile&, int64_t checkpoint)>& fn) {
  ARROW_ASSIGN_OR_RAISE(auto batches, restore->ReadOperatorState(table));
  for (const auto& batch : batches) {
    if (!batch->schema()->Equals(*PendingFilesSchema(), false)) {
      return arrow::Status::Invalid(sink, ": checkpoint ", restore->checkpoint_id(),
                                    " holds table '", table, "' with schema ",
                                    batch->schema()->ToString(), ", expected ",
                                    PendingFilesSchema()->ToString());
    }
    const auto& instances = static_cast<const arrow::Int32Array&>(*batch->column(0));
    const auto& checkpoints = static_cast<const arrow::Int64Array&>(*batch->column(1));
    const auto& temps = static_cast<const arrow::StringArray&>(*batch->column(2));
    const auto& finals = static_cast<const arrow::StringArray&>(*batch->column(3));
    for (int64_t i = 0; i < batch->num_rows(); ++i) {
      if (instances.Value(i) % parallelism != instance_index) continue;
      PendingFile f{std::string(temps.GetView(i)), std::string(finals.GetView(i))};
      std::error_code ec;
      if (!fs::exists(f.temp, ec) && !fs::exists(f.final, ec)) {
        return arrow::Status::IOError(
            sink, ": checkpoint ", restore->checkpoint_id(), " recorded '", f.temp,
            "' (checkpoint ", checkpoints.Value(i), ") as written, but neither it nor '",
            f.final, "' exists: the output directory lost data");
      }
      ARROW_RETURN_NOT_OK(fn(f, checkpoints.Value(i)));
    }
  }
  return arrow::Status::OK();
}

}  // namespace sabot
