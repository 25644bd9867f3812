#include "sabot/connectors/console/console_sink.h"

#include <arrow/array.h>
#include <arrow/scalar.h>
#include <arrow/type.h>
#include <arrow/type_traits.h>

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <string_view>
#include <utility>
#include <vector>

#include "sabot/formats/json_lines.h"
#include "sabot/plan/registry.h"

namespace sabot {

std::string ConsoleSinkOptions::ToString() const {
  std::string out =
      "{\"max_rows_per_batch\":" + std::to_string(max_rows_per_batch) + ",\"title\":";
  AppendJsonString(title, &out);
  out += "}";
  return out;
}

namespace {

constexpr size_t kMaxCellWidth = 40;

// Display width in code points (continuation bytes of UTF-8 do not count).
size_t DisplayWidth(std::string_view s) {
  size_t width = 0;
  for (char c : s) width += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return width;
}

// Replaces characters that would break the table layout.
std::string Printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += '?';
    } else {
      out += c;
    }
  }
  return out;
}

std::string Truncate(std::string s) {
  if (DisplayWidth(s) <= kMaxCellWidth) return s;
  // Keep kMaxCellWidth - 1 code points, then the ellipsis.
  size_t points = 0;
  size_t i = 0;
  for (; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (points == kMaxCellWidth - 1) break;
      ++points;
    }
  }
  s.resize(i);
  s += "\xE2\x80\xA6";  // U+2026 HORIZONTAL ELLIPSIS
  return s;
}

std::string FormatCell(const arrow::Array& array, int64_t i) {
  if (array.IsNull(i)) return "null";
  switch (array.type_id()) {
    case arrow::Type::STRING:
      return Printable(static_cast<const arrow::StringArray&>(array).GetView(i));
    case arrow::Type::LARGE_STRING:
      return Printable(static_cast<const arrow::LargeStringArray&>(array).GetView(i));
    case arrow::Type::STRING_VIEW:
      return Printable(static_cast<const arrow::StringViewArray&>(array).GetView(i));
    default:
      break;
  }
  auto scalar = array.GetScalar(i);
  if (!scalar.ok()) return "<" + scalar.status().ToString() + ">";
  return Printable((*scalar)->ToString());
}

bool RightAligned(const arrow::DataType& type) {
  return arrow::is_integer(type.id()) || arrow::is_floating(type.id()) ||
         arrow::is_decimal(type.id());
}

void AppendPadded(const std::string& cell, size_t width, bool right, std::string* out) {
  const size_t pad = width - std::min(width, DisplayWidth(cell));
  if (right) out->append(pad, ' ');
  out->append(cell);
  if (!right) out->append(pad, ' ');
}

std::mutex& ConsoleMutex() {
  static std::mutex mutex;
  return mutex;
}

class ConsoleSinkOperator : public Operator {
 public:
  explicit ConsoleSinkOperator(ConsoleSinkOptions options)
      : options_(std::move(options)) {}

  arrow::Status Open(OperatorContext* ctx) override {
    heading_ = options_.title.empty() ? ctx->operator_name : options_.title;
    if (ctx->parallelism > 1) {
      heading_ += " [" + std::to_string(ctx->instance_index + 1) + "/" +
                  std::to_string(ctx->parallelism) + "]";
    }
    return arrow::Status::OK();
  }

  arrow::Status ProcessBatch(int input, const std::shared_ptr<arrow::RecordBatch>& batch,
                             OperatorContext* ctx, Collector* out) override {
    std::string text;
    if (!heading_.empty()) text += "== " + heading_ + " ==\n";
    text += FormatTable(*batch, options_.max_rows_per_batch);
    std::lock_guard<std::mutex> lock(ConsoleMutex());
    if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() ||
        std::fflush(stdout) != 0) {
      return arrow::Status::IOError(ctx->operator_name, ": cannot write to stdout");
    }
    return arrow::Status::OK();
  }

 private:
  const ConsoleSinkOptions options_;
  std::string heading_;
};

}  // namespace

std::string FormatTable(const arrow::RecordBatch& batch, int64_t max_rows) {
  const int num_columns = batch.num_columns();
  const int64_t shown = std::clamp<int64_t>(max_rows, 0, batch.num_rows());
  std::vector<std::vector<std::string>> cells(static_cast<size_t>(num_columns));
  std::vector<size_t> widths(static_cast<size_t>(num_columns));
  std::vector<bool> right(static_cast<size_t>(num_columns));
  for (int c = 0; c < num_columns; ++c) {
    const auto col = static_cast<size_t>(c);
    const arrow::Array& array = *batch.column(c);
    std::string header = Truncate(Printable(batch.schema()->field(c)->name()));
    widths[col] = DisplayWidth(header);
    right[col] = RightAligned(*array.type());
    cells[col].reserve(static_cast<size_t>(shown) + 1);
    cells[col].push_back(std::move(header));
    for (int64_t r = 0; r < shown; ++r) {
      std::string cell = Truncate(FormatCell(array, r));
      widths[col] = std::max(widths[col], DisplayWidth(cell));
      cells[col].push_back(std::move(cell));
    }
  }

  std::string out;
  auto append_row = [&](size_t row) {
    out += '|';
    for (size_t c = 0; c < cells.size(); ++c) {
      out += ' ';
      AppendPadded(cells[c][row], widths[c], row > 0 && right[c], &out);
      out += " |";
    }
    out += '\n';
  };
  append_row(0);
  out += '|';
  for (size_t c = 0; c < cells.size(); ++c) {
    out.append(widths[c] + 2, '-');
    out += '|';
  }
  out += '\n';
  for (int64_t r = 0; r < shown; ++r) append_row(static_cast<size_t>(r) + 1);
  if (shown < batch.num_rows()) {
    out += "... " + std::to_string(batch.num_rows() - shown) + " more rows\n";
  }
  return out;
}

arrow::Result<std::unique_ptr<Operator>> MakeConsoleSink(
    const ConsoleSinkOptions& options) {
  if (options.max_rows_per_batch < 0) {
    return arrow::Status::Invalid("console_sink: max_rows_per_batch must be >= 0, got ",
                                  options.max_rows_per_batch);
  }
  return std::make_unique<ConsoleSinkOperator>(options);
}

void RegisterConsoleSink(OperatorRegistry* registry) {
  ARROW_WARN_NOT_OK(registry->AddOperator(
                        "console_sink",
                        [](const PlanNode& node, int instance_index,
                           int parallelism) -> arrow::Result<std::unique_ptr<Operator>> {
                          if (!node.options) return MakeConsoleSink(ConsoleSinkOptions());
                          const auto* options =
                              dynamic_cast<const ConsoleSinkOptions*>(node.options.get());
                          if (options == nullptr) {
                            return arrow::Status::Invalid(
                                node.name, ": console_sink needs ConsoleSinkOptions");
                          }
                          return MakeConsoleSink(*options);
                        }),
                    "RegisterConsoleSink");
}

}  // namespace sabot
