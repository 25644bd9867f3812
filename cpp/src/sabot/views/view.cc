#include "sabot/views/view.h"

#include <arrow/array/util.h>
#include <arrow/scalar.h>

namespace sabot {

MaterializedView::MaterializedView(std::string name, std::vector<std::string> key_columns,
                                   arrow::MemoryPool* pool)
    : name_(std::move(name)),
      key_columns_(key_columns),
      table_(std::move(key_columns), "view '" + name_ + "'", pool) {}

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
