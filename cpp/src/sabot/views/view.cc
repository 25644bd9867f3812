#include "sabot/views/view.h"

#include <arrow/array/util.h>
#include <arrow/scalar.h>

#include <algorithm>
#include <cstdint>

namespace sabot {

const char* ViewConsistencyName(ViewConsistency c) {
  return c == ViewConsistency::kLatest ? "latest" : "checkpoint";
}

MaterializedView::MaterializedView(std::string name, std::vector<std::string> key_columns,
                                   arrow::MemoryPool* pool, ViewConsistency consistency)
    : name_(std::move(name)),
      key_columns_(key_columns),
      consistency_(consistency),
      table_(std::move(key_columns), "view '" + name_ + "'", pool) {}

void MaterializedView::AttachWriter(int owner, int num_writers) {
  std::unique_lock<std::shared_mutex> lock(mutex_);
  if (static_cast<int>(writer_commits_.size()) < num_writers) {
    writer_commits_.resize(static_cast<size_t>(num_writers), -1);
  }
}

arrow::Status MaterializedView::Commit(
    int owner, int64_t checkpoint_id,
    std::vector<std::shared_ptr<arrow::RecordBatch>> batches) {
  std::unique_lock<std::shared_mutex> lock(mutex_);
  if (owner < 0 || owner >= static_cast<int>(writer_commits_.size())) {
    return arrow::Status::Invalid("view '", name_, "': writer ", owner, " not attached");
  }
  auto& list = committed_[checkpoint_id];
  for (auto& b : batches) list.emplace_back(owner, std::move(b));
  writer_commits_[owner] = std::max(writer_commits_[owner], checkpoint_id);
  return PublishLocked();
}

arrow::Status MaterializedView::Finish(
    int owner, std::vector<std::shared_ptr<arrow::RecordBatch>> batches) {
  return Commit(owner, INT64_MAX, std::move(batches));
}

// Applies, in checkpoint order, every commit up to the newest checkpoint all
// writers committed.
arrow::Status MaterializedView::PublishLocked() {
  if (writer_commits_.empty()) return arrow::Status::OK();
  const int64_t upto = *std::min_element(writer_commits_.begin(), writer_commits_.end());
  if (upto <= published_) return arrow::Status::OK();
  auto end = committed_.upper_bound(upto);
  for (auto it = committed_.begin(); it != end; ++it) {
    for (const auto& [owner, batch] : it->second) {
      ARROW_RETURN_NOT_OK(table_.Apply(batch, owner));
    }
  }
  committed_.erase(committed_.begin(), end);
  published_ = upto;
  ++version_;
  return arrow::Status::OK();
}

int64_t MaterializedView::published_checkpoint() const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  return published_;
}

arrow::Status MaterializedView::Apply(const std::shared_ptr<arrow::RecordBatch>& batch,
                                      int owner) {
  std::unique_lock<std::shared_mutex> lock(mutex_);
  ARROW_RETURN_NOT_OK(table_.Apply(batch, owner));
  ++version_;
  return arrow::Status::OK();
}

arrow::Result<std::shared_ptr<arrow::Table>> MaterializedView::ScanOwner(
    int owner) const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  return table_.Scan(owner);
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> MaterializedView::Get(
    const std::vector<std::shared_ptr<arrow::Array>>& key) const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  return table_.Get(key);
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> MaterializedView::GetByText(
    const std::vector<std::string>& key) const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  const auto& types = table_.key_types();
  if (types.empty()) return nullptr;  // no data yet
  if (key.size() != types.size()) {
    return arrow::Status::Invalid("view '", name_, "' has ", types.size(),
                                  " key column(s); got ", key.size(), " value(s)");
  }
  std::vector<std::shared_ptr<arrow::Array>> arrays;
  for (size_t k = 0; k < key.size(); ++k) {
    auto scalar = arrow::Scalar::Parse(types[k], key[k]);
    if (!scalar.ok()) {
      return arrow::Status::Invalid("view '", name_, "': '", key[k],
                                    "' is not a valid value of key column '",
                                    key_columns_[k], "' (", types[k]->ToString(), ")");
    }
    ARROW_ASSIGN_OR_RAISE(auto array, arrow::MakeArrayFromScalar(**scalar, 1));
    arrays.push_back(std::move(array));
  }
  return table_.Get(arrays);
}

arrow::Result<std::shared_ptr<arrow::Table>> MaterializedView::Scan() const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  return table_.Scan();
}

std::shared_ptr<arrow::Schema> MaterializedView::schema() const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  return table_.schema();
}

std::vector<std::shared_ptr<arrow::DataType>> MaterializedView::key_types() const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  return table_.key_types();
}

int64_t MaterializedView::num_rows() const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  return table_.num_rows();
}

int64_t MaterializedView::version() const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  return version_;
}

ViewRegistry* ViewRegistry::Global() {
  static ViewRegistry* registry = new ViewRegistry();
  return registry;
}

void ViewRegistry::Register(std::shared_ptr<MaterializedView> view) {
  std::lock_guard<std::mutex> lock(mutex_);
  views_[view->name()] = std::move(view);
}

std::shared_ptr<MaterializedView> ViewRegistry::Find(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = views_.find(name);
  return it == views_.end() ? nullptr : it->second;
}

bool ViewRegistry::Remove(const std::string& name) {
  std::lock_guard<std::mutex> lock(mutex_);
  return views_.erase(name) > 0;
}

std::vector<std::shared_ptr<MaterializedView>> ViewRegistry::List() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::shared_ptr<MaterializedView>> out;
  for (const auto& [name, view] : views_) out.push_back(view);
  return out;
}

}  // namespace sabot
