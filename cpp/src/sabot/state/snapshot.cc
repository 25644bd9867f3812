#include "sabot/state/snapshot.h"

#include <arrow/array/builder_primitive.h>
#include <arrow/compute/api_vector.h>
#include <arrow/io/file.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "sabot/exec/partitioner.h"

namespace sabot {

namespace {
int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
}  // namespace

KeyGroupRange KeyGroupRange::ForInstance(int index, int parallelism,
                                         int max_parallelism) {
  KeyGroupRange r;
  r.first = static_cast<int>(CeilDiv(int64_t{index} * max_parallelism, parallelism));
  r.last =
      static_cast<int>(CeilDiv(int64_t{index + 1} * max_parallelism, parallelism)) - 1;
  return r;
}

arrow::Result<std::shared_ptr<arrow::Int32Array>> ComputeKeyGroups(
    const arrow::RecordBatch& rows, const std::vector<std::string>& key_columns,
    int max_parallelism, arrow::MemoryPool* pool) {
  ARROW_ASSIGN_OR_RAISE(std::vector<int> indices,
                        ResolveKeyColumns(*rows.schema(), key_columns, "state snapshot"));
  std::vector<uint64_t> hashes;
  ARROW_RETURN_NOT_OK(HashColumns(rows, indices, &hashes));
  arrow::Int32Builder builder(pool);
  ARROW_RETURN_NOT_OK(builder.Reserve(rows.num_rows()));
  for (uint64_t h : hashes) builder.UnsafeAppend(KeyGroupOf(h, max_parallelism));
  std::shared_ptr<arrow::Int32Array> out;
  ARROW_RETURN_NOT_OK(builder.Finish(&out));
  return out;
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> FilterKeyGroups(
    const std::shared_ptr<arrow::RecordBatch>& batch, const KeyGroupRange& range,
    arrow::MemoryPool* pool) {
  int kg_index = batch->schema()->GetFieldIndex(kKeyGroupColumn);
  if (kg_index < 0) {
    return arrow::Status::Invalid("keyed state batch has no ", kKeyGroupColumn,
                                  " column: ", batch->schema()->ToString());
  }
  const auto& groups = static_cast<const arrow::Int32Array&>(*batch->column(kg_index));
  arrow::Int32Builder take(pool);
  ARROW_RETURN_NOT_OK(take.Reserve(batch->num_rows()));
  for (int64_t i = 0; i < batch->num_rows(); ++i) {
    if (range.Contains(groups.Value(i))) take.UnsafeAppend(static_cast<int32_t>(i));
  }
  ARROW_ASSIGN_OR_RAISE(auto without, batch->RemoveColumn(kg_index));
  if (take.length() == batch->num_rows()) return without;
  std::shared_ptr<arrow::Array> indices;
  ARROW_RETURN_NOT_OK(take.Finish(&indices));
  arrow::compute::ExecContext ctx(pool);
  ARROW_ASSIGN_OR_RAISE(
      arrow::Datum taken,
      arrow::compute::Take(without, indices, arrow::compute::TakeOptions::Defaults(),
                           &ctx));
  return taken.record_batch();
}

namespace {

arrow::Result<std::shared_ptr<arrow::RecordBatch>> AppendKeyGroups(
    const std::shared_ptr<arrow::RecordBatch>& rows,
    const std::shared_ptr<arrow::Int32Array>& groups) {
  if (groups->length() != rows->num_rows()) {
    return arrow::Status::Invalid("keyed state: ", groups->length(), " key groups for ",
                                  rows->num_rows(), " rows");
  }
  return rows->AddColumn(rows->num_columns(),
                         arrow::field(kKeyGroupColumn, arrow::int32(), false), groups);
}

arrow::Result<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return arrow::Status::IOError("cannot read '", path, "'");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace

class MemorySnapshotWriter : public SnapshotWriter {
 public:
  MemorySnapshotWriter(MemorySnapshot* owner, MemorySnapshot::InstanceState* state)
      : owner_(owner), state_(state) {}
  int64_t checkpoint_id() const override { return owner_->checkpoint_id_; }

  arrow::Status WriteKeyed(const std::string& table,
                           std::shared_ptr<arrow::RecordBatch> rows,
                           const std::vector<std::string>& key_columns) override {
    ARROW_ASSIGN_OR_RAISE(auto groups,
                          ComputeKeyGroups(*rows, key_columns, owner_->max_parallelism_,
                                           arrow::default_memory_pool()));
    return WriteKeyedWithGroups(table, std::move(rows), std::move(groups));
  }
  arrow::Status WriteKeyedWithGroups(const std::string& table,
                                     std::shared_ptr<arrow::RecordBatch> rows,
                                     std::shared_ptr<arrow::Int32Array> groups) override {
    ARROW_ASSIGN_OR_RAISE(auto with_groups, AppendKeyGroups(rows, groups));
    std::lock_guard<std::mutex> lock(owner_->mutex_);
    state_->keyed[table].push_back(std::move(with_groups));
    return arrow::Status::OK();
  }
  arrow::Status WriteOperatorState(const std::string& table,
                                   std::shared_ptr<arrow::RecordBatch> rows) override {
    std::lock_guard<std::mutex> lock(owner_->mutex_);
    state_->op_state[table].push_back(std::move(rows));
    return arrow::Status::OK();
  }
  arrow::Status AddFiles(const std::string& table, const std::string& local_dir,
                         const std::vector<std::string>& private_files,
                         const std::vector<std::string>& shared_files) override {
    std::map<std::string, std::string> files;
    for (const auto* list : {&private_files, &shared_files}) {
      for (const auto& name : *list) {
        ARROW_ASSIGN_OR_RAISE(files[name], ReadWholeFile(local_dir + "/" + name));
      }
    }
    std::lock_guard<std::mutex> lock(owner_->mutex_);
    state_->files[table] = std::move(files);
    return arrow::Status::OK();
  }

 private:
  MemorySnapshot* owner_;
  MemorySnapshot::InstanceState* state_;
};

class MemorySnapshotReader : public SnapshotReader {
 public:
  MemorySnapshotReader(MemorySnapshot* owner, std::string op, KeyGroupRange range)
      : owner_(owner), op_(std::move(op)), range_(range) {}
  int64_t checkpoint_id() const override { return owner_->checkpoint_id_; }
  KeyGroupRange key_groups() const override { return range_; }

  arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>> ReadKeyed(
      const std::string& table) override {
    std::vector<std::shared_ptr<arrow::RecordBatch>> out;
    std::lock_guard<std::mutex> lock(owner_->mutex_);
    for (auto& [index, state] : owner_->ops_[op_]) {
      auto it = state.keyed.find(table);
      if (it == state.keyed.end()) continue;
      for (const auto& batch : it->second) {
        ARROW_ASSIGN_OR_RAISE(
            auto kept, FilterKeyGroups(batch, range_, arrow::default_memory_pool()));
        if (kept->num_rows() > 0) out.push_back(std::move(kept));
      }
    }
    return out;
  }
  arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>> ReadOperatorState(
      const std::string& table) override {
    std::vector<std::shared_ptr<arrow::RecordBatch>> out;
    std::lock_guard<std::mutex> lock(owner_->mutex_);
    for (auto& [index, state] : owner_->ops_[op_]) {
      auto it = state.op_state.find(table);
      if (it == state.op_state.end()) continue;
      out.insert(out.end(), it->second.begin(), it->second.end());
    }
    return out;
  }
  arrow::Result<std::vector<FileSet>> ReadFiles(const std::string& table,
                                                const std::string& scratch_dir) override {
    std::vector<FileSet> out;
    std::lock_guard<std::mutex> lock(owner_->mutex_);
    for (auto& [index, state] : owner_->ops_[op_]) {
      auto it = state.files.find(table);
      if (it == state.files.end()) continue;
      if (state.key_groups.last < range_.first || state.key_groups.first > range_.last)
        continue;
      std::string dir = scratch_dir + "/" + table + "-" + std::to_string(index);
      std::error_code ec;
      std::filesystem::create_directories(dir, ec);
      if (ec) return arrow::Status::IOError("cannot create '", dir, "': ", ec.message());
      for (const auto& [name, bytes] : it->second) {
        std::ofstream file(dir + "/" + name, std::ios::binary | std::ios::trunc);
        file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        if (!file) return arrow::Status::IOError("cannot write '", dir, "/", name, "'");
      }
      out.push_back(FileSet{state.key_groups, dir});
    }
    return out;
  }

 private:
  MemorySnapshot* owner_;
  std::string op_;
  KeyGroupRange range_;
};

std::unique_ptr<SnapshotWriter> MemorySnapshot::Writer(const std::string& op, int index,
                                                       int parallelism) {
  std::lock_guard<std::mutex> lock(mutex_);
  InstanceState& state = ops_[op][index];
  state.key_groups = KeyGroupRange::ForInstance(index, parallelism, max_parallelism_);
  return std::make_unique<MemorySnapshotWriter>(this, &state);
}

std::unique_ptr<SnapshotReader> MemorySnapshot::Reader(const std::string& op, int index,
                                                       int parallelism) {
  return std::make_unique<MemorySnapshotReader>(
      this, op, KeyGroupRange::ForInstance(index, parallelism, max_parallelism_));
}

}  // namespace sabot
