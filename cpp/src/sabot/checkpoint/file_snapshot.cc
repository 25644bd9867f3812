#include "sabot/checkpoint/file_snapshot.h"

#include <arrow/io/file.h>
#include <arrow/ipc/reader.h>
#include <arrow/ipc/writer.h>

#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "sabot/exec/partitioner.h"

namespace fs = std::filesystem;

namespace sabot::checkpoint {

namespace {

/// Source positions copied into the metadata are informational: cap their size.
constexpr int64_t kMaxPositionRows = 1000;

bool IsSafeRelativeName(const std::string& name) {
  if (name.empty() || name.front() == '/') return false;
  for (const auto& part : fs::path(name)) {
    if (part == "..") return false;
  }
  return true;
}

std::string RowsToJson(const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches) {
  std::ostringstream os;
  os << "[";
  int64_t written = 0;
  for (const auto& batch : batches) {
    for (int64_t r = 0; r < batch->num_rows() && written < kMaxPositionRows; ++r) {
      os << (written ? ", " : "") << "{";
      for (int c = 0; c < batch->num_columns(); ++c) {
        os << (c ? ", " : "") << "\"" << JsonEscape(batch->schema()->field(c)->name())
           << "\": ";
        auto scalar = batch->column(c)->GetScalar(r);
        if (!scalar.ok() || !(*scalar)->is_valid) {
          os << "null";
          continue;
        }
        const auto& type = *(*scalar)->type;
        if (arrow::is_integer(type.id()) || arrow::is_floating(type.id()) ||
            type.id() == arrow::Type::BOOL) {
          os << (*scalar)->ToString();
        } else {
          os << "\"" << JsonEscape((*scalar)->ToString()) << "\"";
        }
      }
      os << "}";
      ++written;
    }
  }
  os << "]";
  return os.str();
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> WithKeyGroups(
    const std::shared_ptr<arrow::RecordBatch>& rows,
    const std::shared_ptr<arrow::Int32Array>& groups) {
  if (groups->length() != rows->num_rows()) {
    return arrow::Status::Invalid("keyed state: ", groups->length(), " key groups for ",
                                  rows->num_rows(), " rows");
  }
  return rows->AddColumn(rows->num_columns(),
                         arrow::field(kKeyGroupColumn, arrow::int32(), false), groups);
}

}  // namespace

// --- writer ------------------------------------------------------------------------

FileSnapshotWriter::FileSnapshotWriter(int64_t checkpoint_id, std::string uid, int index,
                                       int parallelism, int max_parallelism)
    : checkpoint_id_(checkpoint_id),
      uid_(std::move(uid)),
      index_(index),
      parallelism_(parallelism),
      max_parallelism_(max_parallelism) {}

arrow::Status FileSnapshotWriter::WriteKeyed(
    const std::string& table, std::shared_ptr<arrow::RecordBatch> rows,
    const std::vector<std::string>& key_columns) {
  if (!rows) return arrow::Status::Invalid("WriteKeyed('", table, "'): null batch");
  // Fail fast on the task thread when a key column is missing; hashing waits
  // for the I/O thread.
  ARROW_RETURN_NOT_OK(
      ResolveKeyColumns(*rows->schema(), key_columns, "keyed state table '" + table + "'")
          .status());
  parts_.push_back(Part{table, true, std::move(rows), key_columns, nullptr});
  return arrow::Status::OK();
}

arrow::Status FileSnapshotWriter::WriteKeyedWithGroups(
    const std::string& table, std::shared_ptr<arrow::RecordBatch> rows,
    std::shared_ptr<arrow::Int32Array> key_groups) {
  if (!rows || !key_groups) {
    return arrow::Status::Invalid("WriteKeyedWithGroups('", table, "'): null argument");
  }
  if (key_groups->length() != rows->num_rows()) {
    return arrow::Status::Invalid("keyed state table '", table,
                                  "': ", key_groups->length(), " key groups for ",
                                  rows->num_rows(), " rows");
  }
  parts_.push_back(Part{table, true, std::move(rows), {}, std::move(key_groups)});
  return arrow::Status::OK();
}

arrow::Status FileSnapshotWriter::WriteOperatorState(
    const std::string& table, std::shared_ptr<arrow::RecordBatch> rows) {
  if (!rows)
    return arrow::Status::Invalid("WriteOperatorState('", table, "'): null batch");
  parts_.push_back(Part{table, false, std::move(rows), {}, nullptr});
  return arrow::Status::OK();
}

arrow::Status FileSnapshotWriter::AddFiles(const std::string& table,
                                           const std::string& local_dir,
                                           const std::vector<std::string>& private_files,
                                           const std::vector<std::string>& shared_files) {
  for (const auto* list : {&private_files, &shared_files}) {
    for (const auto& name : *list) {
      if (!IsSafeRelativeName(name)) {
        return arrow::Status::Invalid("AddFiles('", table, "'): file name '", name,
                                      "' must be relative to '", local_dir,
                                      "' and stay inside it");
      }
    }
  }
  file_sets_.push_back(FileSetPart{table, local_dir, private_files, shared_files});
  return arrow::Status::OK();
}

arrow::Result<InstanceMetadata> FileSnapshotWriter::Persist(
    const std::string& metadata_dir, CheckpointStore* store, bool self_contained,
    arrow::MemoryPool* pool) {
  InstanceMetadata inst;
  inst.index = index_;
  inst.key_groups = KeyGroupRange::ForInstance(index_, parallelism_, max_parallelism_);
  const std::string rel_dir = SanitizeName(uid_) + "/" + std::to_string(index_);
  const std::string inst_dir = JoinPath(metadata_dir, rel_dir);
  if (!parts_.empty() || !file_sets_.empty()) {
    ARROW_RETURN_NOT_OK(CreateDirectories(inst_dir));
  }

  // Tables in order of first appearance; keyed and operator state apart.
  std::vector<std::pair<bool, std::string>> order;
  std::map<std::pair<bool, std::string>, std::vector<const Part*>> by_table;
  for (const auto& part : parts_) {
    auto key = std::make_pair(part.keyed, part.table);
    if (!by_table.count(key)) order.push_back(key);
    by_table[key].push_back(&part);
  }
  std::set<std::string> used_names;
  for (const auto& key : order) {
    const auto& [keyed, table] = key;
    const std::string prefix = (keyed ? "keyed." : "op.") + SanitizeName(table);
    std::vector<StoredFile> files;
    std::shared_ptr<ChecksumFileStream> stream;
    std::shared_ptr<arrow::ipc::RecordBatchWriter> writer;
    std::shared_ptr<arrow::Schema> schema;
    StoredFile current;
    auto finish = [&]() -> arrow::Status {
      if (!writer) return arrow::Status::OK();
      ARROW_RETURN_NOT_OK(writer->Close());
      ARROW_RETURN_NOT_OK(stream->Close());
      current.size = stream->size();
      current.crc32 = stream->crc32();
      files.push_back(current);
      writer.reset();
      stream.reset();
      return arrow::Status::OK();
    };
    std::vector<std::shared_ptr<arrow::RecordBatch>> op_batches;
    for (const Part* part : by_table[key]) {
      std::shared_ptr<arrow::RecordBatch> batch = part->rows;
      if (keyed) {
        std::shared_ptr<arrow::Int32Array> groups = part->groups;
        if (!groups) {
          ARROW_ASSIGN_OR_RAISE(groups, ComputeKeyGroups(*batch, part->key_columns,
                                                         max_parallelism_, pool));
        }
        ARROW_ASSIGN_OR_RAISE(batch, WithKeyGroups(batch, groups));
      } else if (describe_positions_) {
        op_batches.push_back(batch);
      }
      if (!writer || !schema->Equals(*batch->schema())) {
        ARROW_RETURN_NOT_OK(finish());
        std::string name = prefix + ".arrow";
        for (int n = 1; used_names.count(name); ++n) {
          name = prefix + "." + std::to_string(n) + ".arrow";
        }
        used_names.insert(name);
        current = StoredFile{};
        current.path = rel_dir + "/" + name;
        current.rows = 0;
        schema = batch->schema();
        ARROW_ASSIGN_OR_RAISE(stream, ChecksumFileStream::Open(JoinPath(inst_dir, name)));
        auto options = arrow::ipc::IpcWriteOptions::Defaults();
        options.memory_pool = pool;
        ARROW_ASSIGN_OR_RAISE(writer,
                              arrow::ipc::MakeFileWriter(stream, schema, options));
      }
      ARROW_RETURN_NOT_OK(writer->WriteRecordBatch(*batch));
      current.rows += batch->num_rows();
    }
    ARROW_RETURN_NOT_OK(finish());
    if (keyed) {
      inst.keyed[table] = std::move(files);
    } else {
      inst.operator_state[table] = std::move(files);
      if (describe_positions_) inst.positions_json[table] = RowsToJson(op_batches);
    }
  }

  CheckpointStore fallback("", 1);
  CheckpointStore* shared_store = store ? store : &fallback;
  for (const auto& set_part : file_sets_) {
    StoredFileSet& set = inst.files[set_part.table];
    const std::string files_rel = rel_dir + "/files." + SanitizeName(set_part.table);
    for (const auto& name : set_part.private_files) {
      const std::string rel = files_rel + "/" + name;
      const std::string dest = JoinPath(metadata_dir, rel);
      ARROW_RETURN_NOT_OK(CreateDirectories(fs::path(dest).parent_path().string()));
      ARROW_ASSIGN_OR_RAISE(auto stored,
                            CopyFileDurably(JoinPath(set_part.local_dir, name), dest));
      stored.path = rel;
      set.private_files.push_back({name, stored});
    }
    if (!set_part.private_files.empty()) {
      ARROW_RETURN_NOT_OK(FsyncPath(JoinPath(metadata_dir, files_rel)));
    }
    for (const auto& name : set_part.shared_files) {
      ARROW_ASSIGN_OR_RAISE(
          auto stored, shared_store->PutShared(JoinPath(set_part.local_dir, name), uid_,
                                               set_part.table, name, metadata_dir,
                                               self_contained || store == nullptr));
      set.shared_files.push_back({name, stored});
    }
  }
  if (!parts_.empty() || !file_sets_.empty()) ARROW_RETURN_NOT_OK(FsyncPath(inst_dir));
  return inst;
}

// --- reader ------------------------------------------------------------------------

arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>> ReadStateFile(
    const std::string& path, arrow::MemoryPool* pool) {
  auto read = [&]() -> arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>> {
    ARROW_ASSIGN_OR_RAISE(auto file, arrow::io::ReadableFile::Open(path, pool));
    auto options = arrow::ipc::IpcReadOptions::Defaults();
    options.memory_pool = pool;
    ARROW_ASSIGN_OR_RAISE(auto reader,
                          arrow::ipc::RecordBatchFileReader::Open(file, options));
    std::vector<std::shared_ptr<arrow::RecordBatch>> out;
    for (int i = 0; i < reader->num_record_batches(); ++i) {
      ARROW_ASSIGN_OR_RAISE(auto batch, reader->ReadRecordBatch(i));
      out.push_back(std::move(batch));
    }
    ARROW_RETURN_NOT_OK(file->Close());
    return out;
  };
  auto result = read();
  if (!result.ok()) {
    return result.status().WithMessage("cannot read state file '", path,
                                       "': ", result.status().message());
  }
  return result;
}

FileSnapshotReader::FileSnapshotReader(std::shared_ptr<const CheckpointMetadata> metadata,
                                       std::string uid, int index, int parallelism,
                                       arrow::MemoryPool* pool)
    : metadata_(std::move(metadata)),
      uid_(std::move(uid)),
      range_(KeyGroupRange::ForInstance(index, parallelism, metadata_->max_parallelism)),
      pool_(pool) {}

const OperatorMetadata* FileSnapshotReader::op() const {
  auto it = metadata_->operators.find(uid_);
  return it == metadata_->operators.end() ? nullptr : &it->second;
}

std::vector<std::string> FileSnapshotReader::KeyedTables() const {
  std::set<std::string> names;
  if (const auto* o = op()) {
    for (const auto& inst : o->instances) {
      for (const auto& [table, files] : inst.keyed) names.insert(table);
    }
  }
  return {names.begin(), names.end()};
}

arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>>
FileSnapshotReader::ReadKeyed(const std::string& table) {
  std::vector<std::shared_ptr<arrow::RecordBatch>> out;
  const auto* o = op();
  if (!o) return out;
  for (const auto& inst : o->instances) {
    if (inst.key_groups.last < range_.first || inst.key_groups.first > range_.last) {
      continue;
    }
    auto it = inst.keyed.find(table);
    if (it == inst.keyed.end()) continue;
    for (const auto& file : it->second) {
      ARROW_ASSIGN_OR_RAISE(
          auto batches, ReadStateFile(JoinPath(metadata_->directory, file.path), pool_));
      for (const auto& batch : batches) {
        auto kept = FilterKeyGroups(batch, range_, pool_);
        if (!kept.ok()) {
          return kept.status().WithMessage("state file '",
                                           JoinPath(metadata_->directory, file.path),
                                           "': ", kept.status().message());
        }
        if ((*kept)->num_rows() > 0) out.push_back(std::move(*kept));
      }
    }
  }
  return out;
}

arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>>
FileSnapshotReader::ReadOperatorState(const std::string& table) {
  std::vector<std::shared_ptr<arrow::RecordBatch>> out;
  const auto* o = op();
  if (!o) return out;
  for (const auto& inst : o->instances) {
    auto it = inst.operator_state.find(table);
    if (it == inst.operator_state.end()) continue;
    for (const auto& file : it->second) {
      ARROW_ASSIGN_OR_RAISE(
          auto batches, ReadStateFile(JoinPath(metadata_->directory, file.path), pool_));
      out.insert(out.end(), batches.begin(), batches.end());
    }
  }
  return out;
}

arrow::Result<std::vector<SnapshotReader::FileSet>> FileSnapshotReader::ReadFiles(
    const std::string& table, const std::string& scratch_dir) {
  std::vector<FileSet> out;
  const auto* o = op();
  if (!o) return out;
  for (const auto& inst : o->instances) {
    if (inst.key_groups.last < range_.first || inst.key_groups.first > range_.last) {
      continue;
    }
    auto it = inst.files.find(table);
    if (it == inst.files.end()) continue;
    const std::string dir =
        JoinPath(scratch_dir, SanitizeName(table) + "-" + std::to_string(inst.index));
    ARROW_RETURN_NOT_OK(RemoveAll(dir));
    ARROW_RETURN_NOT_OK(CreateDirectories(dir));
    for (const auto& entry : it->second.private_files) {
      const std::string dest = JoinPath(dir, entry.name);
      ARROW_RETURN_NOT_OK(CreateDirectories(fs::path(dest).parent_path().string()));
      ARROW_RETURN_NOT_OK(
          CopyFileDurably(JoinPath(metadata_->directory, entry.file.path), dest)
              .status());
    }
    for (const auto& entry : it->second.shared_files) {
      const std::string dest = JoinPath(dir, entry.name);
      ARROW_RETURN_NOT_OK(CreateDirectories(fs::path(dest).parent_path().string()));
      ARROW_RETURN_NOT_OK(
          LinkOrCopy(JoinPath(metadata_->directory, entry.file.path), dest));
    }
    out.push_back(FileSet{inst.key_groups, dir});
  }
  return out;
}

}  // namespace sabot::checkpoint
