#include "sabot/connectors/file/file_source.h"

#include <arrow/array.h>
#include <arrow/array/builder_binary.h>
#include <arrow/array/builder_primitive.h>
#include <arrow/builder.h>
#include <arrow/csv/api.h>
#include <arrow/io/file.h>
#include <arrow/io/interfaces.h>
#include <arrow/ipc/reader.h>
#include <arrow/json/api.h>
#include <arrow/record_batch.h>
#include <arrow/type.h>
#include <parquet/arrow/reader.h>
#include <parquet/properties.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <system_error>
#include <utility>

#include "sabot/formats/json_lines.h"
#include "sabot/plan/registry.h"

namespace sabot {

namespace fs = std::filesystem;

std::string FileSourceOptions::ToString() const {
  std::string out = "{\"paths\":[";
  for (size_t i = 0; i < paths.size(); ++i) {
    if (i > 0) out.push_back(',');
    AppendJsonString(paths[i], &out);
  }
  out += "],\"format\":";
  AppendJsonString(format, &out);
  if (schema) {
    out += ",\"schema\":";
    AppendJsonString(schema->ToString(), &out);
  }
  out += ",\"batch_size\":" + std::to_string(batch_size) + "}";
  return out;
}

std::string DescribeSchemaDifference(const arrow::Schema& expected,
                                     const arrow::Schema& actual) {
  const int n = std::min(expected.num_fields(), actual.num_fields());
  for (int i = 0; i < n; ++i) {
    const auto& e = *expected.field(i);
    const auto& a = *actual.field(i);
    if (e.name() != a.name() || !e.type()->Equals(*a.type())) {
      return "expected '" + e.name() + ": " + e.type()->ToString() + "', found '" +
             a.name() + ": " + a.type()->ToString() + "' at field " + std::to_string(i);
    }
  }
  if (expected.num_fields() > n) {
    return "field '" + expected.field(n)->name() + "' (field " + std::to_string(n) +
           ") is missing";
  }
  if (actual.num_fields() > n) {
    return "unexpected extra field '" + actual.field(n)->name() + "' (field " +
           std::to_string(n) + ")";
  }
  return "";
}

namespace {

enum class FileFormat { kParquet, kCsv, kJsonLines, kIpc };

arrow::Result<FileFormat> ParseFormat(const std::string& format) {
  if (format == "parquet") return FileFormat::kParquet;
  if (format == "csv") return FileFormat::kCsv;
  if (format == "jsonl") return FileFormat::kJsonLines;
  if (format == "ipc") return FileFormat::kIpc;
  return arrow::Status::Invalid("unknown file format '", format,
                                "' (expected parquet, csv, jsonl or ipc)");
}

bool SkippedName(const std::string& name) {
  static constexpr std::string_view kInProgress = ".inprogress";
  return name.empty() || name[0] == '.' || name[0] == '_' ||
         (name.size() >= kInProgress.size() &&
          name.compare(name.size() - kInProgress.size(), kInProgress.size(),
                       kInProgress) == 0);
}

arrow::Status PathError(const std::string& path, const std::error_code& ec) {
  return arrow::Status::IOError("cannot read '", path, "': ", ec.message());
}

// The JSON-lines encoder writes timestamps, times and durations as integers in
// their unit and dates as "YYYY-MM-DD", while Arrow's JSON reader parses
// timestamps only from strings and dates only from numbers. With a user schema,
// such columns are read as integers / strings and converted afterwards.
std::shared_ptr<arrow::DataType> JsonReadType(
    const std::shared_ptr<arrow::DataType>& type) {
  switch (type->id()) {
    case arrow::Type::TIMESTAMP:
    case arrow::Type::TIME64:
    case arrow::Type::DURATION:
      return arrow::int64();
    case arrow::Type::TIME32:
      return arrow::int32();
    case arrow::Type::DATE32:
    case arrow::Type::DATE64:
      return arrow::utf8();
    case arrow::Type::STRUCT: {
      arrow::FieldVector fields;
      for (const auto& field : type->fields()) {
        fields.push_back(field->WithType(JsonReadType(field->type())));
      }
      return arrow::struct_(std::move(fields));
    }
    case arrow::Type::LIST:
      return arrow::list(type->field(0)->WithType(JsonReadType(type->field(0)->type())));
    default:
      return type;
  }
}

std::shared_ptr<arrow::Schema> JsonReadSchema(const arrow::Schema& schema) {
  arrow::FieldVector fields;
  for (const auto& field : schema.fields()) {
    fields.push_back(field->WithType(JsonReadType(field->type())));
  }
  return arrow::schema(std::move(fields), schema.metadata());
}

// "YYYY-MM-DD" (year may carry a sign and more digits) -> days since 1970-01-01.
bool ParseIsoDate(std::string_view text, int64_t* days) {
  size_t i = 0;
  bool negative = false;
  if (i < text.size() && (text[i] == '-' || text[i] == '+')) negative = text[i++] == '-';
  int64_t year = 0;
  size_t digits = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9' && digits < 9;
       ++i, ++digits) {
    year = year * 10 + (text[i] - '0');
  }
  if (digits < 4 || text.size() != i + 6 || text[i] != '-' || text[i + 3] != '-')
    return false;
  auto two = [&](size_t at, int64_t* v) {
    if (text[at] < '0' || text[at] > '9' || text[at + 1] < '0' || text[at + 1] > '9') {
      return false;
    }
    *v = (text[at] - '0') * 10 + (text[at + 1] - '0');
    return true;
  };
  int64_t month = 0;
  int64_t day = 0;
  if (!two(i + 1, &month) || !two(i + 4, &day)) return false;
  if (negative) year = -year;
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  static constexpr int kMonthDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month < 1 || month > 12 || day < 1 ||
      day > kMonthDays[month - 1] + (month == 2 && leap ? 1 : 0)) {
    return false;
  }
  // Civil date -> day count, counting years from March so leap days come last.
  const int64_t y = year - (month <= 2 ? 1 : 0);
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t year_of_era = y - era * 400;
  const int64_t day_of_year =
      (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
  const int64_t day_of_era =
      year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  *days = era * 146097 + day_of_era - 719468;
  return true;
}

arrow::Result<std::shared_ptr<arrow::ArrayData>> ParseDates(
    const std::shared_ptr<arrow::ArrayData>& data,
    const std::shared_ptr<arrow::DataType>& type, arrow::MemoryPool* pool) {
  arrow::StringArray strings(data);
  const bool is_date64 = type->id() == arrow::Type::DATE64;
  std::unique_ptr<arrow::ArrayBuilder> builder;
  ARROW_RETURN_NOT_OK(arrow::MakeBuilder(pool, type, &builder));
  ARROW_RETURN_NOT_OK(builder->Reserve(strings.length()));
  for (int64_t i = 0; i < strings.length(); ++i) {
    if (strings.IsNull(i)) {
      ARROW_RETURN_NOT_OK(builder->AppendNull());
      continue;
    }
    int64_t days = 0;
    if (!ParseIsoDate(strings.GetView(i), &days)) {
      return arrow::Status::Invalid("cannot parse '", strings.GetView(i),
                                    "' as a date (YYYY-MM-DD)");
    }
    if (is_date64) {
      ARROW_RETURN_NOT_OK(
          static_cast<arrow::Date64Builder&>(*builder).Append(days * 86400000));
    } else {
      ARROW_RETURN_NOT_OK(static_cast<arrow::Date32Builder&>(*builder).Append(
          static_cast<int32_t>(days)));
    }
  }
  std::shared_ptr<arrow::ArrayData> out;
  ARROW_RETURN_NOT_OK(builder->FinishInternal(&out));
  return out;
}

// Turns `data`, read with JsonReadType(type), into an array of `type`: integer
// columns are relabelled in place (same layout), date strings are parsed.
arrow::Result<std::shared_ptr<arrow::ArrayData>> FromJsonReadType(
    const std::shared_ptr<arrow::ArrayData>& data,
    const std::shared_ptr<arrow::DataType>& type, arrow::MemoryPool* pool) {
  if (data->type->Equals(*type)) return data;
  if ((type->id() == arrow::Type::DATE32 || type->id() == arrow::Type::DATE64) &&
      data->type->id() == arrow::Type::STRING) {
    return ParseDates(data, type, pool);
  }
  auto out = data->Copy();
  out->type = type;
  for (size_t i = 0; i < out->child_data.size(); ++i) {
    ARROW_ASSIGN_OR_RAISE(
        out->child_data[i],
        FromJsonReadType(out->child_data[i], type->field(static_cast<int>(i))->type(),
                         pool));
  }
  return out;
}

// Wraps Arrow's JSON reader, undoing JsonReadType on every batch.
class JsonConvertingReader : public arrow::RecordBatchReader {
 public:
  JsonConvertingReader(std::shared_ptr<arrow::RecordBatchReader> reader,
                       std::shared_ptr<arrow::Schema> schema, arrow::MemoryPool* pool)
      : reader_(std::move(reader)), schema_(std::move(schema)), pool_(pool) {}
  std::shared_ptr<arrow::Schema> schema() const override { return schema_; }
  arrow::Status ReadNext(std::shared_ptr<arrow::RecordBatch>* batch) override {
    ARROW_RETURN_NOT_OK(reader_->ReadNext(batch));
    if (!*batch) return arrow::Status::OK();
    std::vector<std::shared_ptr<arrow::ArrayData>> columns;
    for (int i = 0; i < (*batch)->num_columns(); ++i) {
      auto column =
          FromJsonReadType((*batch)->column_data(i), schema_->field(i)->type(), pool_);
      if (!column.ok()) {
        return column.status().WithMessage("column '", schema_->field(i)->name(),
                                           "': ", column.status().message());
      }
      columns.push_back(*std::move(column));
    }
    *batch = arrow::RecordBatch::Make(schema_, (*batch)->num_rows(), std::move(columns));
    return arrow::Status::OK();
  }

 private:
  std::shared_ptr<arrow::RecordBatchReader> reader_;
  std::shared_ptr<arrow::Schema> schema_;
  arrow::MemoryPool* pool_;
};

// Reads the record batches of an Arrow IPC file (random-access format) in order.
class IpcFileBatchReader : public arrow::RecordBatchReader {
 public:
  explicit IpcFileBatchReader(std::shared_ptr<arrow::ipc::RecordBatchFileReader> reader)
      : reader_(std::move(reader)) {}

  std::shared_ptr<arrow::Schema> schema() const override { return reader_->schema(); }

  arrow::Status ReadNext(std::shared_ptr<arrow::RecordBatch>* batch) override {
    if (next_ >= reader_->num_record_batches()) {
      *batch = nullptr;
      return arrow::Status::OK();
    }
    ARROW_ASSIGN_OR_RAISE(*batch, reader_->ReadRecordBatch(next_++));
    return arrow::Status::OK();
  }

 private:
  std::shared_ptr<arrow::ipc::RecordBatchFileReader> reader_;
  int next_ = 0;
};

// Validates every batch it passes on: IPC data is untrusted and a corrupt
// offset would otherwise surface later as an out-of-bounds read.
class ValidatingReader : public arrow::RecordBatchReader {
 public:
  explicit ValidatingReader(std::shared_ptr<arrow::RecordBatchReader> reader)
      : reader_(std::move(reader)) {}
  std::shared_ptr<arrow::Schema> schema() const override { return reader_->schema(); }
  arrow::Status ReadNext(std::shared_ptr<arrow::RecordBatch>* batch) override {
    ARROW_RETURN_NOT_OK(reader_->ReadNext(batch));
    if (*batch) ARROW_RETURN_NOT_OK((*batch)->Validate());
    return arrow::Status::OK();
  }

 private:
  std::shared_ptr<arrow::RecordBatchReader> reader_;
};

// Owns a parquet FileReader together with the batch reader it hands out.
class ParquetBatchReader : public arrow::RecordBatchReader {
 public:
  ParquetBatchReader(std::unique_ptr<parquet::arrow::FileReader> file,
                     std::unique_ptr<arrow::RecordBatchReader> batches)
      : file_(std::move(file)), batches_(std::move(batches)) {}
  ~ParquetBatchReader() override {
    batches_.reset();  // before the file reader it reads from
  }
  std::shared_ptr<arrow::Schema> schema() const override { return batches_->schema(); }
  arrow::Status ReadNext(std::shared_ptr<arrow::RecordBatch>* batch) override {
    return batches_->ReadNext(batch);
  }

 private:
  std::unique_ptr<parquet::arrow::FileReader> file_;
  std::unique_ptr<arrow::RecordBatchReader> batches_;
};

class FileSourceReader : public SourceReader {
 public:
  FileSourceReader(FileSourceOptions options, FileFormat format, int instance_index,
                   int parallelism)
      : options_(std::move(options)),
        format_(format),
        instance_index_(instance_index),
        parallelism_(parallelism) {}

  arrow::Status Open(OperatorContext* ctx) override {
    name_ = ctx->operator_name.empty() ? "file_source" : ctx->operator_name;
    pool_ = ctx->pool ? ctx->pool : arrow::default_memory_pool();
    ARROW_RETURN_NOT_OK(ValidateFileSourceOptions(options_, name_));
    auto listed = ListSourceFiles(options_.paths);
    if (!listed.ok()) return Prefixed(listed.status());
    std::vector<std::string> all_files = std::move(listed).ValueOrDie();
    for (size_t i = static_cast<size_t>(instance_index_); i < all_files.size();
         i += static_cast<size_t>(parallelism_)) {
      files_.push_back(all_files[i]);
    }
    progress_.assign(files_.size(), FileProgress{});
    if (ctx->restore) ARROW_RETURN_NOT_OK(RestorePositions(ctx->restore));
    if (options_.schema) {
      output_schema_ = options_.schema;
      reference_description_ = "the source schema";
    } else if (!all_files.empty() && (files_.empty() || files_[0] != all_files[0])) {
      // Another instance reads the first file; derive the same schema from it.
      ARROW_ASSIGN_OR_RAISE(auto reader, OpenFile(all_files[0]));
      ARROW_RETURN_NOT_OK(reader->Close());
    }
    return arrow::Status::OK();
  }

  arrow::Result<PollResult> Poll(StreamElement* out) override {
    while (true) {
      if (pending_ && pending_offset_ < pending_->num_rows()) {
        const int64_t length =
            std::min(options_.batch_size, pending_->num_rows() - pending_offset_);
        std::shared_ptr<arrow::RecordBatch> batch =
            (pending_offset_ == 0 && length == pending_->num_rows())
                ? pending_
                : pending_->Slice(pending_offset_, length);
        pending_offset_ += length;
        progress_[current_index_].rows += length;
        *out = StreamElement::Batch(std::move(batch));
        return PollResult::kElement;
      }
      pending_.reset();
      pending_offset_ = 0;
      if (!current_) {
        while (next_file_ < files_.size() && progress_[next_file_].done) ++next_file_;
        if (next_file_ >= files_.size()) return PollResult::kEndOfInput;
        current_index_ = next_file_++;
        current_path_ = files_[current_index_];
        ARROW_ASSIGN_OR_RAISE(current_, OpenFile(current_path_));
        to_skip_ = progress_[current_index_].rows;
      }
      std::shared_ptr<arrow::RecordBatch> batch;
      arrow::Status st = current_->ReadNext(&batch);
      if (!st.ok()) return FileError(current_path_, st);
      if (!batch) {
        st = current_->Close();
        current_.reset();
        if (!st.ok()) return FileError(current_path_, st);
        if (to_skip_ > 0) {
          return arrow::Status::Invalid(
              name_, ": '", current_path_, "' has ",
              progress_[current_index_].rows - to_skip_, " rows, fewer than the ",
              progress_[current_index_].rows,
              " the restored checkpoint had read: the file changed since");
        }
        progress_[current_index_].done = true;
        continue;
      }
      if (batch->num_rows() == 0) continue;
      if (to_skip_ > 0) {
        // Resuming after a restore: drop the rows read before the checkpoint.
        const int64_t skip = std::min(to_skip_, batch->num_rows());
        to_skip_ -= skip;
        if (skip == batch->num_rows()) continue;
        batch = batch->Slice(skip);
      }
      if (!batch->schema()->Equals(*output_schema_, /*check_metadata=*/true)) {
        // Same names and types (checked at open); adopt the source's schema so all
        // batches carry one schema object.
        batch =
            arrow::RecordBatch::Make(output_schema_, batch->num_rows(), batch->columns());
      }
      pending_ = std::move(batch);
    }
  }

  /// Writes, per file of this instance, how many rows were handed downstream
  /// and whether it is finished (operator state "file_positions"), so a restore
  /// at any parallelism resumes each file where it stopped.
  arrow::Status SnapshotState(SnapshotWriter* writer) override {
    arrow::StringBuilder paths(pool_);
    arrow::Int64Builder rows(pool_);
    arrow::BooleanBuilder done(pool_);
    for (size_t i = 0; i < files_.size(); ++i) {
      ARROW_RETURN_NOT_OK(paths.Append(files_[i]));
      ARROW_RETURN_NOT_OK(rows.Append(progress_[i].rows));
      ARROW_RETURN_NOT_OK(done.Append(progress_[i].done));
    }
    std::shared_ptr<arrow::Array> a, b, c;
    ARROW_RETURN_NOT_OK(paths.Finish(&a));
    ARROW_RETURN_NOT_OK(rows.Finish(&b));
    ARROW_RETURN_NOT_OK(done.Finish(&c));
    return writer->WriteOperatorState(
        kFilePositionsState,
        arrow::RecordBatch::Make(PositionsSchema(), a->length(), {a, b, c}));
  }

  arrow::Status Close() override {
    pending_.reset();
    if (current_) {
      arrow::Status st = current_->Close();
      current_.reset();
      if (!st.ok()) return FileError(current_path_, st);
    }
    return arrow::Status::OK();
  }

 private:
  struct FileProgress {
    int64_t rows = 0;   ///< rows handed downstream
    bool done = false;  ///< every row handed downstream
  };

  static std::shared_ptr<arrow::Schema> PositionsSchema() {
    static const auto schema =
        arrow::schema({arrow::field("path", arrow::utf8(), false),
                       arrow::field("rows", arrow::int64(), false),
                       arrow::field("done", arrow::boolean(), false)});
    return schema;
  }

  arrow::Status RestorePositions(SnapshotReader* restore) {
    ARROW_ASSIGN_OR_RAISE(auto batches, restore->ReadOperatorState(kFilePositionsState));
    std::map<std::string, FileProgress> restored;
    for (const auto& batch : batches) {
      if (!batch->schema()->Equals(*PositionsSchema(), false)) {
        return arrow::Status::Invalid(name_, ": checkpoint ", restore->checkpoint_id(),
                                      " holds table '", kFilePositionsState,
                                      "' with schema ", batch->schema()->ToString(),
                                      ", expected ", PositionsSchema()->ToString());
      }
      const auto& paths = static_cast<const arrow::StringArray&>(*batch->column(0));
      const auto& rows = static_cast<const arrow::Int64Array&>(*batch->column(1));
      const auto& done = static_cast<const arrow::BooleanArray&>(*batch->column(2));
      for (int64_t i = 0; i < batch->num_rows(); ++i) {
        restored[std::string(paths.GetView(i))] =
            FileProgress{rows.Value(i), done.Value(i)};
      }
    }
    // Files not in the checkpoint (new since) are read from the start.
    for (size_t i = 0; i < files_.size(); ++i) {
      auto it = restored.find(files_[i]);
      if (it != restored.end()) progress_[i] = it->second;
    }
    return arrow::Status::OK();
  }

  arrow::Status Prefixed(const arrow::Status& st) const {
    return st.WithMessage(name_, ": ", st.message());
  }

  arrow::Status FileError(const std::string& path, const arrow::Status& st) const {
    return st.WithMessage(name_, ": cannot read '", path, "': ", st.message());
  }

  // Opens `path` and checks its schema against the source schema; the first file
  // opened without a user schema defines it.
  arrow::Result<std::shared_ptr<arrow::RecordBatchReader>> OpenFile(
      const std::string& path) {
    auto opened = OpenFormatReader(path);
    if (!opened.ok()) return FileError(path, opened.status());
    std::shared_ptr<arrow::RecordBatchReader> reader = std::move(opened).ValueOrDie();
    if (!output_schema_) {
      output_schema_ = reader->schema();
      reference_description_ = "'" + path + "' (the first file)";
      return reader;
    }
    std::string difference = DescribeSchemaDifference(*output_schema_, *reader->schema());
    if (!difference.empty()) {
      ARROW_UNUSED(reader->Close());
      return arrow::Status::Invalid(name_, ": schema of '", path, "' differs from ",
                                    reference_description_, ": ", difference);
    }
    return reader;
  }

  arrow::Result<std::shared_ptr<arrow::RecordBatchReader>> OpenFormatReader(
      const std::string& path) {
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) {
      if (ec) return PathError(path, ec);
      return arrow::Status::IOError("not a regular file");
    }
    ARROW_ASSIGN_OR_RAISE(auto file, arrow::io::ReadableFile::Open(path, pool_));
    switch (format_) {
      case FileFormat::kParquet:
        return OpenParquet(std::move(file));
      case FileFormat::kCsv:
        return OpenCsv(std::move(file));
      case FileFormat::kJsonLines:
        return OpenJsonLines(std::move(file));
      case FileFormat::kIpc:
        return OpenIpc(std::move(file));
    }
    return arrow::Status::Invalid("unknown format");
  }

  arrow::Result<std::shared_ptr<arrow::RecordBatchReader>> OpenParquet(
      std::shared_ptr<arrow::io::ReadableFile> file) {
    parquet::ArrowReaderProperties arrow_properties;
    arrow_properties.set_batch_size(options_.batch_size);
    arrow_properties.set_use_threads(false);
    parquet::arrow::FileReaderBuilder builder;
    ARROW_RETURN_NOT_OK(builder.Open(std::move(file), parquet::ReaderProperties(pool_)));
    builder.memory_pool(pool_)->properties(arrow_properties);
    ARROW_ASSIGN_OR_RAISE(std::unique_ptr<parquet::arrow::FileReader> reader,
                          builder.Build());
    ARROW_ASSIGN_OR_RAISE(auto batches, reader->GetRecordBatchReader());
    return std::make_shared<ParquetBatchReader>(std::move(reader), std::move(batches));
  }

  arrow::Result<std::shared_ptr<arrow::RecordBatchReader>> OpenCsv(
      std::shared_ptr<arrow::io::ReadableFile> file) {
    auto read_options = arrow::csv::ReadOptions::Defaults();
    read_options.use_threads = false;
    auto parse_options = arrow::csv::ParseOptions::Defaults();
    auto convert_options = arrow::csv::ConvertOptions::Defaults();
    // Unquoted empty fields are null, quoted "" stays an empty string: this is how
    // the file sink (Arrow's CSV writer) tells the two apart.
    convert_options.strings_can_be_null = true;
    convert_options.quoted_strings_can_be_null = false;
    if (output_schema_) {
      for (const auto& field : output_schema_->fields()) {
        convert_options.column_types[field->name()] = field->type();
      }
      // A user schema selects and orders columns; an inferred one must match.
      if (options_.schema) {
        for (const auto& field : output_schema_->fields()) {
          convert_options.include_columns.push_back(field->name());
        }
      }
    }
    ARROW_ASSIGN_OR_RAISE(
        std::shared_ptr<arrow::RecordBatchReader> reader,
        arrow::csv::StreamingReader::Make(arrow::io::IOContext(pool_), std::move(file),
                                          read_options, parse_options, convert_options));
    return reader;
  }

  arrow::Result<std::shared_ptr<arrow::RecordBatchReader>> OpenJsonLines(
      std::shared_ptr<arrow::io::ReadableFile> file) {
    auto read_options = arrow::json::ReadOptions::Defaults();
    read_options.use_threads = false;
    auto parse_options = arrow::json::ParseOptions::Defaults();
    std::shared_ptr<arrow::Schema> read_schema;
    if (output_schema_) {
      // Types inferred from the first file are Arrow's own and read back as they
      // are; a user schema's temporal columns are read as the encoder writes them.
      read_schema = options_.schema ? JsonReadSchema(*output_schema_) : output_schema_;
      parse_options.explicit_schema = read_schema;
      // A user schema selects fields; an inferred one must match, so keep extras
      // visible to the schema check.
      parse_options.unexpected_field_behavior =
          options_.schema ? arrow::json::UnexpectedFieldBehavior::Ignore
                          : arrow::json::UnexpectedFieldBehavior::InferType;
    }
    ARROW_ASSIGN_OR_RAISE(
        std::shared_ptr<arrow::RecordBatchReader> reader,
        arrow::json::StreamingReader::Make(std::move(file), read_options, parse_options,
                                           arrow::io::IOContext(pool_)));
    if (read_schema && !read_schema->Equals(*output_schema_)) {
      // Only when the file has exactly the source's fields can columns be
      // converted; otherwise let the schema check report the difference.
      if (DescribeSchemaDifference(*read_schema, *reader->schema()).empty()) {
        return std::make_shared<JsonConvertingReader>(std::move(reader), output_schema_,
                                                      pool_);
      }
    }
    return reader;
  }

  arrow::Result<std::shared_ptr<arrow::RecordBatchReader>> OpenIpc(
      std::shared_ptr<arrow::io::ReadableFile> file) {
    auto ipc_options = arrow::ipc::IpcReadOptions::Defaults();
    ipc_options.memory_pool = pool_;
    ipc_options.use_threads = false;
    ARROW_ASSIGN_OR_RAISE(int64_t size, file->GetSize());
    uint8_t head[8] = {0};
    ARROW_ASSIGN_OR_RAISE(int64_t head_len, file->ReadAt(0, sizeof(head), head));
    if (head_len >= 6 && std::memcmp(head, "ARROW1", 6) == 0) {
      ARROW_ASSIGN_OR_RAISE(auto reader,
                            arrow::ipc::RecordBatchFileReader::Open(file, ipc_options));
      return std::make_shared<ValidatingReader>(
          std::make_shared<IpcFileBatchReader>(std::move(reader)));
    }
    // Stream format: the first message starts with an optional 0xFFFFFFFF marker and
    // a little-endian metadata length. Reject lengths the file cannot hold before
    // Arrow allocates a buffer of that size.
    if (head_len < 8) {
      return arrow::Status::Invalid("not an Arrow IPC file or stream (", size, " bytes)");
    }
    auto read_le32 = [](const uint8_t* p) {
      return static_cast<int32_t>(uint32_t{p[0]} | (uint32_t{p[1]} << 8) |
                                  (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24));
    };
    const bool continuation = read_le32(head) == -1;
    const int32_t metadata_length = continuation ? read_le32(head + 4) : read_le32(head);
    if (metadata_length <= 0 || metadata_length > size) {
      return arrow::Status::Invalid(
          "not an Arrow IPC file or stream (no ARROW1 magic and an impossible first "
          "message length ",
          metadata_length, " for a file of ", size, " bytes)");
    }
    ARROW_RETURN_NOT_OK(file->Seek(0));
    ARROW_ASSIGN_OR_RAISE(std::shared_ptr<arrow::RecordBatchReader> reader,
                          arrow::ipc::RecordBatchStreamReader::Open(file, ipc_options));
    return std::make_shared<ValidatingReader>(std::move(reader));
  }

  const FileSourceOptions options_;
  const FileFormat format_;
  const int instance_index_;
  const int parallelism_;

  std::string name_ = "file_source";
  arrow::MemoryPool* pool_ = arrow::default_memory_pool();
  std::vector<std::string> files_;      // this instance's split
  std::vector<FileProgress> progress_;  // per file of files_
  size_t next_file_ = 0;
  size_t current_index_ = 0;  // index in files_ of the open file
  int64_t to_skip_ = 0;       // rows of the open file read before the checkpoint
  std::shared_ptr<arrow::Schema> output_schema_;
  std::string reference_description_;  // where output_schema_ came from

  std::string current_path_;
  std::shared_ptr<arrow::RecordBatchReader> current_;
  std::shared_ptr<arrow::RecordBatch> pending_;  // sliced to batch_size on output
  int64_t pending_offset_ = 0;
};

}  // namespace

arrow::Status ValidateFileSourceOptions(const FileSourceOptions& options,
                                        const std::string& name) {
  auto format = ParseFormat(options.format);
  if (!format.ok())
    return format.status().WithMessage(name, ": ", format.status().message());
  if (options.paths.empty()) return arrow::Status::Invalid(name, ": no paths given");
  if (options.batch_size <= 0) {
    return arrow::Status::Invalid(name, ": batch_size must be positive, got ",
                                  options.batch_size);
  }
  return arrow::Status::OK();
}

arrow::Result<std::vector<std::string>> ListSourceFiles(
    const std::vector<std::string>& paths) {
  std::vector<std::string> files;
  for (const auto& path : paths) {
    std::error_code ec;
    const fs::file_status status = fs::status(path, ec);
    if (ec || !fs::exists(status)) {
      return PathError(
          path, ec ? ec : std::make_error_code(std::errc::no_such_file_or_directory));
    }
    if (!fs::is_directory(status)) {
      files.push_back(path);
      continue;
    }
    std::vector<std::string> entries;
    fs::directory_iterator it(path, ec);
    if (ec) return PathError(path, ec);
    for (; it != fs::directory_iterator(); it.increment(ec)) {
      if (ec) return PathError(path, ec);
      const std::string name = it->path().filename().string();
      if (SkippedName(name)) continue;
      std::error_code type_ec;
      if (!it->is_regular_file(type_ec) || type_ec) continue;
      entries.push_back(it->path().string());
    }
    if (ec) return PathError(path, ec);
    std::sort(entries.begin(), entries.end());
    files.insert(files.end(), entries.begin(), entries.end());
  }
  return files;
}

arrow::Result<std::unique_ptr<SourceReader>> MakeFileSourceReader(
    const FileSourceOptions& options, int instance_index, int parallelism) {
  auto format = ParseFormat(options.format);
  if (!format.ok()) {
    return format.status().WithMessage("file_source: ", format.status().message());
  }
  if (parallelism < 1 || instance_index < 0 || instance_index >= parallelism) {
    return arrow::Status::Invalid("file_source: instance ", instance_index,
                                  " is out of range for parallelism ", parallelism);
  }
  return std::make_unique<FileSourceReader>(options, *format, instance_index,
                                            parallelism);
}

void RegisterFileSource(OperatorRegistry* registry) {
  ARROW_WARN_NOT_OK(
      registry->AddSource(
          "file_source",
          [](const PlanNode& node, int instance_index,
             int parallelism) -> arrow::Result<std::unique_ptr<SourceReader>> {
            const auto* options =
                dynamic_cast<const FileSourceOptions*>(node.options.get());
            if (options == nullptr) {
              return arrow::Status::Invalid(node.name,
                                            ": file_source needs FileSourceOptions");
            }
            ARROW_RETURN_NOT_OK(ValidateFileSourceOptions(*options, node.name));
            return MakeFileSourceReader(*options, instance_index, parallelism);
          }),
      "RegisterFileSource");
}

}  // namespace sabot
