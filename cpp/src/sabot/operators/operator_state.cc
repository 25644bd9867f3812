#include "sabot/operators/operator_state.h"

#include <arrow/builder.h>
#include <arrow/io/memory.h>
#include <arrow/ipc/dictionary.h>
#include <arrow/ipc/reader.h>
#include <arrow/ipc/writer.h>
#include <arrow/record_batch.h>

#include <algorithm>

namespace sabot {

namespace {
// "{prefix}{i}" (appended rather than concatenated: GCC 12 warns falsely on
// `"a" + std::to_string(i)`).
std::string Numbered(char prefix, size_t i) {
  std::string s(1, prefix);
  s.append(std::to_string(i));
  return s;
}
}  // namespace

std::string StateKeyColumn(size_t i) { return Numbered('k', i); }

std::vector<std::string> StateKeyColumns(size_t n) {
  std::vector<std::string> names;
  for (size_t i = 0; i < n; ++i) names.push_back(StateKeyColumn(i));
  return names;
}

void StateColumns::Add(std::string name, std::shared_ptr<arrow::Array> column) {
  fields_.push_back(arrow::field(std::move(name), column->type()));
  columns_.push_back(std::move(column));
}

void StateColumns::AddKeys(const std::vector<std::shared_ptr<arrow::Array>>& keys) {
  for (size_t i = 0; i < keys.size(); ++i) Add(StateKeyColumn(i), keys[i]);
}

arrow::Status StateColumns::AddConstant(std::string name, int64_t value, int64_t length,
                                        arrow::MemoryPool* pool) {
  arrow::Int64Builder b(pool);
  ARROW_RETURN_NOT_OK(b.AppendValues(std::vector<int64_t>(length, value)));
  ARROW_ASSIGN_OR_RAISE(auto a, b.Finish());
  Add(std::move(name), std::move(a));
  return arrow::Status::OK();
}

arrow::Status StateColumns::AddAccumulators(
    const std::vector<std::unique_ptr<Accumulator>>& accs,
    const std::vector<uint32_t>& groups) {
  for (size_t a = 0; a < accs.size(); ++a) {
    std::vector<std::string> names;
    arrow::ArrayVector columns;
    ARROW_RETURN_NOT_OK(accs[a]->ExportState(groups, &names, &columns));
    for (size_t c = 0; c < columns.size(); ++c)
      Add(Numbered('a', a).append("_").append(names[c]), std::move(columns[c]));
  }
  return arrow::Status::OK();
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> StateColumns::Finish(
    int64_t num_rows) {
  for (size_t i = 0; i < columns_.size(); ++i) {
    if (columns_[i]->length() != num_rows) {
      return arrow::Status::Invalid("state column '", fields_[i]->name(), "' has ",
                                    columns_[i]->length(), " rows, expected ", num_rows);
    }
  }
  return arrow::RecordBatch::Make(arrow::schema(std::move(fields_)), num_rows,
                                  std::move(columns_));
}

arrow::Status MergeAccumulators(const arrow::RecordBatch& state,
                                const std::vector<std::unique_ptr<Accumulator>>& accs,
                                const uint32_t* ids, const std::string& operator_name) {
  for (size_t a = 0; a < accs.size(); ++a) {
    // The columns "a{a}_*" in order.
    const std::string prefix = Numbered('a', a).append("_");
    arrow::ArrayVector columns;
    for (int c = 0; c < state.num_columns(); ++c) {
      if (state.schema()->field(c)->name().rfind(prefix, 0) == 0)
        columns.push_back(state.column(c));
    }
    if (static_cast<int>(columns.size()) != accs[a]->num_state_columns()) {
      return arrow::Status::Invalid(
          operator_name, ": restore: aggregate ", a, " has ", columns.size(),
          " state columns in the checkpoint, expected ", accs[a]->num_state_columns(),
          " (was the job's aggregate list changed?)");
    }
    auto st = accs[a]->MergeState(columns, ids, state.num_rows());
    if (!st.ok()) return st.WithMessage(operator_name, ": restore: ", st.message());
  }
  return arrow::Status::OK();
}

arrow::Result<std::vector<std::shared_ptr<arrow::Array>>> StateKeys(
    const arrow::RecordBatch& state, size_t num_keys, const std::string& operator_name) {
  std::vector<std::shared_ptr<arrow::Array>> keys;
  for (size_t i = 0; i < num_keys; ++i) {
    auto column = state.GetColumnByName(StateKeyColumn(i));
    if (!column) {
      return arrow::Status::Invalid(operator_name, ": restore: state table has no key '",
                                    StateKeyColumn(i), "' (",
                                    state.schema()->ToString(false), ")");
    }
    keys.push_back(std::move(column));
  }
  return keys;
}

namespace {
template <typename ArrayType>
arrow::Result<std::shared_ptr<ArrayType>> TypedStateColumn(
    const arrow::RecordBatch& state, const std::string& name, arrow::Type::type id,
    const std::string& operator_name) {
  auto column = state.GetColumnByName(name);
  if (!column || column->type_id() != id) {
    return arrow::Status::Invalid(operator_name, ": restore: state table has no ",
                                  arrow::internal::ToString(id), " column '", name, "' (",
                                  state.schema()->ToString(false), ")");
  }
  return std::static_pointer_cast<ArrayType>(column);
}
}  // namespace

arrow::Result<std::shared_ptr<arrow::Int64Array>> StateInt64(
    const arrow::RecordBatch& state, const std::string& name,
    const std::string& operator_name) {
  return TypedStateColumn<arrow::Int64Array>(state, name, arrow::Type::INT64,
                                             operator_name);
}

arrow::Result<std::shared_ptr<arrow::BooleanArray>> StateBool(
    const arrow::RecordBatch& state, const std::string& name,
    const std::string& operator_name) {
  return TypedStateColumn<arrow::BooleanArray>(state, name, arrow::Type::BOOL,
                                               operator_name);
}

arrow::Result<std::shared_ptr<arrow::Array>> RowsAsStruct(
    const arrow::RecordBatch& rows) {
  // Not StructArray::Make: it refuses zero columns and a length it cannot infer.
  std::vector<std::shared_ptr<arrow::ArrayData>> children;
  for (const auto& c : rows.column_data()) children.push_back(c);
  auto type = arrow::struct_(rows.schema()->fields());
  auto data =
      arrow::ArrayData::Make(type, rows.num_rows(), {nullptr}, std::move(children),
                             /*null_count=*/0);
  return arrow::MakeArray(data);
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> StructAsRows(
    const std::shared_ptr<arrow::Array>& column, const std::string& operator_name) {
  if (!column || column->type_id() != arrow::Type::STRUCT) {
    return arrow::Status::Invalid(operator_name,
                                  ": restore: expected a struct column of rows, got ",
                                  column ? column->type()->ToString() : "none");
  }
  const auto& s = static_cast<const arrow::StructArray&>(*column);
  arrow::ArrayVector columns;
  for (int i = 0; i < s.num_fields(); ++i) columns.push_back(s.field(i));  // sliced
  return arrow::RecordBatch::Make(arrow::schema(s.struct_type()->fields()), s.length(),
                                  std::move(columns));
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> ReadKeyedTable(
    SnapshotReader* reader, const std::string& table, arrow::MemoryPool* pool) {
  ARROW_ASSIGN_OR_RAISE(auto batches, reader->ReadKeyed(table));
  std::vector<std::shared_ptr<arrow::RecordBatch>> nonempty;
  for (auto& b : batches) {
    if (b && b->num_rows() > 0) nonempty.push_back(std::move(b));
  }
  if (nonempty.empty()) return nullptr;
  if (nonempty.size() == 1) return nonempty.front();
  return arrow::ConcatenateRecordBatches(nonempty, pool);
}

namespace {

constexpr char kValuePrefix[] = "v_";
constexpr char kSchemaPrefix[] = "s_";

arrow::Result<std::shared_ptr<arrow::Buffer>> SerializeSchemaBytes(
    const arrow::Schema& schema) {
  return arrow::ipc::SerializeSchema(schema);
}

arrow::Result<std::shared_ptr<arrow::Schema>> DeserializeSchemaBytes(
    std::string_view bytes) {
  arrow::io::BufferReader in(
      std::make_shared<arrow::Buffer>(reinterpret_cast<const uint8_t*>(bytes.data()),
                                      static_cast<int64_t>(bytes.size())));
  arrow::ipc::DictionaryMemo memo;
  return arrow::ipc::ReadSchema(&in, &memo);
}

}  // namespace

arrow::Status WriteInstanceMeta(SnapshotWriter* writer, const InstanceMeta& meta) {
  StateColumns columns;
  arrow::Int32Builder i32;
  ARROW_RETURN_NOT_OK(i32.Append(meta.instance_index));
  ARROW_ASSIGN_OR_RAISE(auto index, i32.Finish());
  columns.Add("instance", index);
  ARROW_RETURN_NOT_OK(i32.Append(meta.parallelism));
  ARROW_ASSIGN_OR_RAISE(auto parallelism, i32.Finish());
  columns.Add("parallelism", parallelism);
  for (const auto& [name, value] : meta.values) {
    arrow::Int64Builder b;
    ARROW_RETURN_NOT_OK(b.Append(value));
    ARROW_ASSIGN_OR_RAISE(auto a, b.Finish());
    columns.Add(kValuePrefix + name, a);
  }
  for (const auto& [name, schema] : meta.schemas) {
    arrow::BinaryBuilder b;
    if (schema) {
      ARROW_ASSIGN_OR_RAISE(auto bytes, SerializeSchemaBytes(*schema));
      ARROW_RETURN_NOT_OK(b.Append(bytes->data(), bytes->size()));
    } else {
      ARROW_RETURN_NOT_OK(b.AppendNull());
    }
    ARROW_ASSIGN_OR_RAISE(auto a, b.Finish());
    columns.Add(kSchemaPrefix + name, a);
  }
  ARROW_ASSIGN_OR_RAISE(auto batch, columns.Finish(1));
  return writer->WriteOperatorState(kMetaTable, std::move(batch));
}

arrow::Result<std::vector<InstanceMeta>> ReadInstanceMeta(SnapshotReader* reader) {
  ARROW_ASSIGN_OR_RAISE(auto batches, reader->ReadOperatorState(kMetaTable));
  std::vector<InstanceMeta> metas;
  for (const auto& batch : batches) {
    for (int64_t r = 0; r < batch->num_rows(); ++r) {
      InstanceMeta meta;
      for (int c = 0; c < batch->num_columns(); ++c) {
        const std::string& name = batch->schema()->field(c)->name();
        const auto& column = batch->column(c);
        if (column->IsNull(r)) {
          if (name.rfind(kSchemaPrefix, 0) == 0) meta.schemas[name.substr(2)] = nullptr;
          continue;
        }
        if (name == "instance" && column->type_id() == arrow::Type::INT32) {
          meta.instance_index = static_cast<const arrow::Int32Array&>(*column).Value(r);
        } else if (name == "parallelism" && column->type_id() == arrow::Type::INT32) {
          meta.parallelism = static_cast<const arrow::Int32Array&>(*column).Value(r);
        } else if (name.rfind(kValuePrefix, 0) == 0 &&
                   column->type_id() == arrow::Type::INT64) {
          meta.values[name.substr(2)] =
              static_cast<const arrow::Int64Array&>(*column).Value(r);
        } else if (name.rfind(kSchemaPrefix, 0) == 0 &&
                   column->type_id() == arrow::Type::BINARY) {
          ARROW_ASSIGN_OR_RAISE(
              meta.schemas[name.substr(2)],
              DeserializeSchemaBytes(
                  static_cast<const arrow::BinaryArray&>(*column).GetView(r)));
        }
      }
      metas.push_back(std::move(meta));
    }
  }
  return metas;
}

int64_t MinMetaValue(const std::vector<InstanceMeta>& metas, const std::string& name,
                     int64_t fallback) {
  bool found = false;
  int64_t out = fallback;
  for (const auto& m : metas) {
    auto it = m.values.find(name);
    if (it == m.values.end()) continue;
    out = found ? std::min(out, it->second) : it->second;
    found = true;
  }
  return out;
}

int64_t SameInstanceValue(const std::vector<InstanceMeta>& metas, int index,
                          int parallelism, const std::string& name, int64_t fallback) {
  for (const auto& m : metas) {
    if (m.instance_index != index || m.parallelism != parallelism) continue;
    auto it = m.values.find(name);
    if (it != m.values.end()) return it->second;
  }
  return fallback;
}

std::shared_ptr<arrow::Schema> MetaSchema(const std::vector<InstanceMeta>& metas,
                                          const std::string& name) {
  for (const auto& m : metas) {
    auto it = m.schemas.find(name);
    if (it != m.schemas.end() && it->second) return it->second;
  }
  return nullptr;
}

}  // namespace sabot
