#include "sabot/functions/string_functions.h"

#include <arrow/array/array_nested.h>
#include <arrow/array/util.h>
#include <arrow/compute/api_scalar.h>
#include <arrow/compute/exec.h>
#include <arrow/compute/kernel.h>
#include <arrow/scalar.h>
#include <arrow/util/bit_util.h>
#include <arrow/util/checked_cast.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <optional>

namespace sabot {

namespace cp = arrow::compute;
using arrow::internal::checked_cast;

namespace {

constexpr char kEmpty[1] = {0};

// --- inputs --------------------------------------------------------------------

/// A utf8 / large_utf8 array span read row by row.
template <typename Offset>
struct StringColumn {
  explicit StringColumn(const arrow::ArraySpan& span)
      : offsets(span.GetValues<Offset>(1)),
        data(span.buffers[2].data ? reinterpret_cast<const char*>(span.buffers[2].data)
                                  : kEmpty),
        validity(span.buffers[0].data),
        bit_offset(span.offset) {}

  bool IsValid(int64_t i) const {
    return validity == nullptr || arrow::bit_util::GetBit(validity, bit_offset + i);
  }
  std::string_view View(int64_t i) const {
    return {data + offsets[i], static_cast<size_t>(offsets[i + 1] - offsets[i])};
  }
  /// Bytes of string data the rows [0, length) span.
  int64_t DataLength(int64_t length) const { return offsets[length] - offsets[0]; }

  const Offset* offsets;
  const char* data;
  const uint8_t* validity;
  int64_t bit_offset;
};

/// A string argument that is a literal (scalar) or a column, of either width.
class StringArg {
 public:
  explicit StringArg(const cp::ExecValue& value) {
    if (value.is_scalar()) {
      const auto& s = checked_cast<const arrow::BaseBinaryScalar&>(*value.scalar);
      scalar_ = true;
      scalar_valid_ = s.is_valid;
      if (s.is_valid) scalar_value_ = s.view();
    } else {
      large_ = value.array.type->id() == arrow::Type::LARGE_STRING;
      span_ = &value.array;
    }
  }
  bool is_scalar() const { return scalar_; }
  std::optional<std::string_view> Get(int64_t i) const {
    if (scalar_) {
      if (!scalar_valid_) return std::nullopt;
      return scalar_value_;
    }
    if (large_) return Read<int64_t>(i);
    return Read<int32_t>(i);
  }

 private:
  template <typename Offset>
  std::optional<std::string_view> Read(int64_t i) const {
    StringColumn<Offset> column(*span_);
    if (!column.IsValid(i)) return std::nullopt;
    return column.View(i);
  }

  bool scalar_ = false;
  bool scalar_valid_ = false;
  std::string_view scalar_value_;
  bool large_ = false;
  const arrow::ArraySpan* span_ = nullptr;
};

int64_t IntegerAt(arrow::Type::type id, const uint8_t* values, int64_t i) {
  switch (id) {
    case arrow::Type::INT8:
      return reinterpret_cast<const int8_t*>(values)[i];
    case arrow::Type::INT16:
      return reinterpret_cast<const int16_t*>(values)[i];
    case arrow::Type::INT32:
      return reinterpret_cast<const int32_t*>(values)[i];
    case arrow::Type::UINT8:
      return reinterpret_cast<const uint8_t*>(values)[i];
    case arrow::Type::UINT16:
      return reinterpret_cast<const uint16_t*>(values)[i];
    case arrow::Type::UINT32:
      return reinterpret_cast<const uint32_t*>(values)[i];
    case arrow::Type::UINT64: {
      uint64_t v = reinterpret_cast<const uint64_t*>(values)[i];
      return v > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(v);
    }
    default:
      return reinterpret_cast<const int64_t*>(values)[i];
  }
}

/// An integer argument that is a literal (scalar) or a column, of any width.
class IntegerArg {
 public:
  explicit IntegerArg(const cp::ExecValue& value) {
    if (value.is_scalar()) {
      const auto& s = *value.scalar;
      scalar_ = true;
      scalar_valid_ = s.is_valid;
      if (s.is_valid) {
        scalar_value_ = IntegerAt(
            s.type->id(),
            static_cast<const uint8_t*>(
                checked_cast<const arrow::internal::PrimitiveScalarBase&>(s).data()),
            0);
      }
    } else {
      span_ = &value.array;
    }
  }
  bool is_scalar() const { return scalar_; }
  std::optional<int64_t> Get(int64_t i) const {
    if (scalar_) {
      if (!scalar_valid_) return std::nullopt;
      return scalar_value_;
    }
    const uint8_t* validity = span_->buffers[0].data;
    if (validity && !arrow::bit_util::GetBit(validity, span_->offset + i)) {
      return std::nullopt;
    }
    return IntegerAt(span_->type->id(), span_->buffers[1].data, span_->offset + i);
  }

 private:
  bool scalar_ = false;
  bool scalar_valid_ = false;
  int64_t scalar_value_ = 0;
  const arrow::ArraySpan* span_ = nullptr;
};

// --- output --------------------------------------------------------------------

/// Writes a string column of substrings in one pass: offsets, data and validity
/// directly, no builder.
template <typename Offset>
class SubstringWriter {
 public:
  arrow::Status Init(cp::KernelContext* ctx, int64_t length, int64_t data_capacity) {
    length_ = length;
    ARROW_ASSIGN_OR_RAISE(offsets_buffer_, ctx->Allocate((length + 1) * sizeof(Offset)));
    ARROW_ASSIGN_OR_RAISE(data_buffer_, ctx->Allocate(data_capacity));
    ARROW_ASSIGN_OR_RAISE(validity_buffer_, ctx->AllocateBitmap(length));
    offsets_ = reinterpret_cast<Offset*>(offsets_buffer_->mutable_data());
    data_ = reinterpret_cast<char*>(data_buffer_->mutable_data());
    validity_ = validity_buffer_->mutable_data();
    offsets_[0] = 0;
    return arrow::Status::OK();
  }
  void Append(int64_t i, std::string_view value) {
    std::memcpy(data_ + position_, value.data(), value.size());
    position_ += static_cast<Offset>(value.size());
    offsets_[i + 1] = position_;
    arrow::bit_util::SetBit(validity_, i);
  }
  void AppendNull(int64_t i) {
    offsets_[i + 1] = position_;
    arrow::bit_util::ClearBit(validity_, i);
    ++null_count_;
  }
  arrow::Result<std::shared_ptr<arrow::ArrayData>> Finish(
      std::shared_ptr<arrow::DataType> type) {
    ARROW_RETURN_NOT_OK(data_buffer_->Resize(position_, /*shrink_to_fit=*/true));
    std::shared_ptr<arrow::Buffer> validity = std::move(validity_buffer_);
    if (null_count_ == 0) validity = nullptr;
    return arrow::ArrayData::Make(
        std::move(type), length_,
        {std::move(validity), std::move(offsets_buffer_), std::move(data_buffer_)},
        null_count_);
  }

 private:
  int64_t length_ = 0;
  int64_t null_count_ = 0;
  Offset position_ = 0;
  std::shared_ptr<arrow::ResizableBuffer> offsets_buffer_, data_buffer_, validity_buffer_;
  Offset* offsets_ = nullptr;
  char* data_ = nullptr;
  uint8_t* validity_ = nullptr;
};

/// The string input as an array span: a scalar string (when another argument
/// is a column) is broadcast first, kept alive in `holder`.
arrow::Result<const arrow::ArraySpan*> StringInputSpan(
    cp::KernelContext* ctx, const cp::ExecSpan& batch,
    std::shared_ptr<arrow::ArrayData>* holder, arrow::ArraySpan* broadcast) {
  const cp::ExecValue& value = batch[0];
  if (value.is_array()) return &value.array;
  ARROW_ASSIGN_OR_RAISE(auto array, arrow::MakeArrayFromScalar(
                                        *value.scalar, batch.length, ctx->memory_pool()));
  *holder = array->data();
  broadcast->SetMembers(**holder);
  return broadcast;
}

template <typename Offset>
arrow::Status RunSubstrings(cp::KernelContext* ctx, const cp::ExecSpan& batch,
                            cp::ExecResult* out, auto&& substring_of_row) {
  std::shared_ptr<arrow::ArrayData> holder;
  arrow::ArraySpan broadcast;
  ARROW_ASSIGN_OR_RAISE(const arrow::ArraySpan* span,
                        StringInputSpan(ctx, batch, &holder, &broadcast));
  StringColumn<Offset> input(*span);
  const int64_t length = batch.length;
  SubstringWriter<Offset> writer;
  ARROW_RETURN_NOT_OK(writer.Init(ctx, length, input.DataLength(length)));
  for (int64_t i = 0; i < length; ++i) {
    std::optional<std::string_view> value;
    if (input.IsValid(i)) value = substring_of_row(i, input.View(i));
    if (value) {
      writer.Append(i, *value);
    } else {
      writer.AppendNull(i);
    }
  }
  ARROW_ASSIGN_OR_RAISE(out->value, writer.Finish(out->type()->GetSharedPtr()));
  return arrow::Status::OK();
}

// --- split_index -----------------------------------------------------------------

/// Field `index` of `s` split at every (non-overlapping, leftmost) occurrence of
/// `sep`, empty fields kept; nullopt past the last field. As Flink's
/// SPLIT_INDEX (commons-lang3 splitByWholeSeparatorPreserveAllTokens): the
/// empty string has no fields.
inline std::optional<std::string_view> SplitField(std::string_view s,
                                                  std::string_view sep, int64_t index) {
  if (s.empty() || index < 0) return std::nullopt;
  size_t begin = 0;
  if (sep.size() == 1) {
    // Fields in URLs and similar keys are a few bytes: a plain byte loop beats
    // a memchr call per field.
    const char c = sep[0];
    const char* p = s.data();
    const char* const end = p + s.size();
    for (int64_t k = 0; k < index; ++k) {
      while (p < end && *p != c) ++p;
      if (p == end) return std::nullopt;
      ++p;
    }
    const char* field = p;
    while (p < end && *p != c) ++p;
    return std::string_view(field, static_cast<size_t>(p - field));
  }
  for (int64_t k = 0; k < index; ++k) {
    size_t hit = s.find(sep, begin);
    if (hit == std::string_view::npos) return std::nullopt;
    begin = hit + sep.size();
  }
  size_t end = s.find(sep, begin);
  if (end == std::string_view::npos) end = s.size();
  return s.substr(begin, end - begin);
}

template <typename Offset>
arrow::Status SplitIndexExec(cp::KernelContext* ctx, const cp::ExecSpan& batch,
                             cp::ExecResult* out) {
  StringArg sep(batch[1]);
  IntegerArg index(batch[2]);
  if (sep.is_scalar() && index.is_scalar()) {
    std::optional<std::string_view> s = sep.Get(0);
    std::optional<int64_t> k = index.Get(0);
    if (s && s->empty()) {
      return arrow::Status::Invalid("split_index: the separator is empty");
    }
    if (!s || !k || *k < 0) {
      ARROW_ASSIGN_OR_RAISE(
          auto nulls, arrow::MakeArrayOfNull(out->type()->GetSharedPtr(), batch.length,
                                             ctx->memory_pool()));
      out->value = nulls->data();
      return arrow::Status::OK();
    }
    const std::string_view sep_value = *s;
    const int64_t k_value = *k;
    return RunSubstrings<Offset>(ctx, batch, out, [&](int64_t, std::string_view row) {
      return SplitField(row, sep_value, k_value);
    });
  }
  arrow::Status status;
  ARROW_RETURN_NOT_OK(RunSubstrings<Offset>(
      ctx, batch, out,
      [&](int64_t i, std::string_view row) -> std::optional<std::string_view> {
        std::optional<std::string_view> s = sep.Get(i);
        std::optional<int64_t> k = index.Get(i);
        if (!s || !k) return std::nullopt;
        if (s->empty()) {
          status = arrow::Status::Invalid("split_index: the separator is empty");
          return std::nullopt;
        }
        return SplitField(row, *s, *k);
      }));
  return status;
}

// --- regexp_extract ----------------------------------------------------------------

bool IsLiteralByte(unsigned char c) {
  if (c >= 0x80) return true;  // part of a UTF-8 sequence: matched byte for byte
  if (c < 0x20 || c == 0x7f) return false;
  return std::strchr("\\^$.|?*+()[]{}", c) == nullptr;
}

/// One literal character of the pattern at `i` (plain or `\` + punctuation):
/// its byte and the characters it takes, or 0 if it is not a literal.
size_t LiteralAt(std::string_view p, size_t i, char* byte) {
  if (i >= p.size()) return 0;
  unsigned char c = static_cast<unsigned char>(p[i]);
  if (c == '\\') {
    if (i + 1 < p.size()) {
      unsigned char e = static_cast<unsigned char>(p[i + 1]);
      if (e < 0x80 && std::ispunct(e)) {
        *byte = static_cast<char>(e);
        return 2;
      }
    }
    return 0;
  }
  if (!IsLiteralByte(c)) return 0;
  *byte = static_cast<char>(c);
  return 1;
}

bool ConsumeText(std::string_view p, size_t* i, std::string_view text) {
  if (p.substr(*i).substr(0, text.size()) != text) return false;
  *i += text.size();
  return true;
}

/// Fills the fast-path fields of `plan` if `p` is in the supported class.
bool PlanFastPath(std::string_view p, RegexpExtractPlan* plan) {
  size_t i = 0;
  if (ConsumeText(p, &i, "^")) {
    plan->prefix = RegexpExtractPlan::Prefix::kStart;
  } else if (!p.empty() && p[0] == '(') {
    i = 1;
    plan->prefix_capturing = !ConsumeText(p, &i, "?:");
    char c = 0;
    if (ConsumeText(p, &i, "^|")) {
      size_t n = LiteralAt(p, i, &c);
      if (n == 0 || static_cast<unsigned char>(c) >= 0x80) return false;
      i += n;
      plan->boundary_first = false;
    } else {
      size_t n = LiteralAt(p, i, &c);
      if (n == 0 || static_cast<unsigned char>(c) >= 0x80) return false;
      i += n;
      if (!ConsumeText(p, &i, "|^")) return false;
      plan->boundary_first = true;
    }
    if (!ConsumeText(p, &i, ")")) return false;
    plan->prefix = RegexpExtractPlan::Prefix::kBoundary;
    plan->boundary = c;
  }
  for (char c = 0;;) {
    size_t n = LiteralAt(p, i, &c);
    if (n == 0) break;
    plan->literal.push_back(c);
    i += n;
  }
  if (plan->literal.empty()) return false;
  if (i < p.size()) {
    if (!ConsumeText(p, &i, "([^")) return false;
    size_t members = 0;
    while (i < p.size() && p[i] != ']') {
      unsigned char c = static_cast<unsigned char>(p[i]);
      if (c < 0x20 || c >= 0x7f || std::strchr("\\[]^-", c) != nullptr) return false;
      plan->stop[c] = true;
      ++members;
      ++i;
    }
    if (members == 0 || !ConsumeText(p, &i, "]*)")) return false;
    plan->has_tail = true;
  }
  return i == p.size();
}

arrow::Status InvalidPattern(std::string_view pattern, std::string_view why) {
  return arrow::Status::Invalid("regexp_extract: invalid pattern '", pattern, "': ", why);
}

/// The pattern with capturing group `group` (0: the whole pattern) named `g`
/// and every other capturing group made non-capturing, as Arrow's
/// extract_regex wants named groups only; counts the capturing groups.
arrow::Result<std::string> NameGroup(std::string_view p, int64_t group, int64_t* groups) {
  std::string out = group == 0 ? "(?P<g>" : "";
  int64_t count = 0;
  int depth = 0;
  size_t i = 0;
  while (i < p.size()) {
    const char c = p[i];
    if (c == '\\') {
      size_t stop = i + 2;
      if (i + 1 < p.size() && p[i + 1] == 'Q') {  // \Q...\E quotes everything
        size_t e = p.find("\\E", i + 2);
        stop = e == std::string_view::npos ? p.size() : e + 2;
      }
      stop = std::min(stop, p.size());
      out.append(p.substr(i, stop - i));
      i = stop;
      continue;
    }
    if (c == '[') {  // a character class: parentheses inside are literal
      size_t j = i + 1;
      if (j < p.size() && p[j] == '^') ++j;
      if (j < p.size() && p[j] == ']') ++j;
      while (j < p.size() && p[j] != ']') {
        if (p[j] == '\\') {
          j += 2;
        } else if (p[j] == '[' && j + 1 < p.size() && p[j + 1] == ':') {
          size_t e = p.find(":]", j + 2);
          j = e == std::string_view::npos ? p.size() : e + 2;
        } else {
          ++j;
        }
      }
      j = std::min(j + 1, p.size());
      out.append(p.substr(i, j - i));
      i = j;
      continue;
    }
    if (c == '(') {
      ++depth;
      std::string_view rest = p.substr(i);
      size_t opener = 1;
      bool capturing = true;
      if (rest.substr(0, 2) == "(?") {
        bool named = rest.substr(0, 4) == "(?P<" ||
                     (rest.substr(0, 3) == "(?<" && rest.size() > 3 && rest[3] != '=' &&
                      rest[3] != '!');
        if (named) {
          size_t close = rest.find('>');
          if (close == std::string_view::npos) {
            return InvalidPattern(p, "unterminated group name");
          }
          opener = close + 1;
        } else {
          capturing = false;
        }
      }
      if (capturing) {
        ++count;
        out += count == group ? "(?P<g>" : "(?:";
        i += opener;
        continue;
      }
    } else if (c == ')') {
      if (--depth < 0) return InvalidPattern(p, "unbalanced parentheses");
    }
    out.push_back(c);
    ++i;
  }
  if (depth != 0) return InvalidPattern(p, "unbalanced parentheses");
  if (group == 0) out += ")";
  *groups = count;
  return out;
}

/// The match of a fast-path plan in `s`: the requested group, or nullopt.
inline std::optional<std::string_view> FastExtract(const RegexpExtractPlan& plan,
                                                   std::string_view s) {
  const std::string_view literal = plan.literal;
  size_t start = 0;
  size_t at = 0;  // where the literal matched
  switch (plan.prefix) {
    case RegexpExtractPlan::Prefix::kStart:
      if (s.substr(0, literal.size()) != literal) return std::nullopt;
      break;
    case RegexpExtractPlan::Prefix::kNone:
      at = s.find(literal);
      if (at == std::string_view::npos) return std::nullopt;
      start = at;
      break;
    case RegexpExtractPlan::Prefix::kBoundary:
      for (at = s.find(literal);; at = s.find(literal, at + 1)) {
        if (at == std::string_view::npos) return std::nullopt;
        if (at == 0) {
          // Both alternatives can match at 0: the one written first wins.
          if (plan.boundary_first && !s.empty() && s[0] == plan.boundary &&
              s.substr(1, literal.size()) == literal) {
            at = 1;
          }
          start = 0;
          break;
        }
        if (s[at - 1] == plan.boundary) {
          start = at - 1;
          break;
        }
      }
      break;
  }
  const size_t tail_begin = at + literal.size();
  size_t end = tail_begin;
  if (plan.has_tail) {
    while (end < s.size() && !plan.stop[static_cast<unsigned char>(s[end])]) ++end;
  }
  switch (plan.output) {
    case RegexpExtractPlan::Output::kPrefix:
      return s.substr(start, at - start);
    case RegexpExtractPlan::Output::kTail:
      return s.substr(tail_begin, end - tail_begin);
    case RegexpExtractPlan::Output::kWhole:
      break;
  }
  return s.substr(start, end - start);
}

/// The literal value of argument `i` of a call (a scalar, or a column holding
/// one value, as when every argument is a literal).
arrow::Result<std::shared_ptr<arrow::Scalar>> LiteralArgument(const cp::ExecSpan& batch,
                                                              int i, const char* what) {
  const cp::ExecValue& value = batch[i];
  if (value.is_scalar()) return value.scalar->GetSharedPtr();
  std::shared_ptr<arrow::Array> array = value.array.ToArray();
  if (array->length() == 0) return arrow::MakeNullScalar(array->type());
  ARROW_ASSIGN_OR_RAISE(auto first, array->GetScalar(0));
  for (int64_t r = 1; r < array->length(); ++r) {
    ARROW_ASSIGN_OR_RAISE(auto other, array->GetScalar(r));
    if (!other->Equals(*first)) {
      return arrow::Status::Invalid("regexp_extract: the ", what,
                                    " must be a literal, the same for every row");
    }
  }
  return first;
}

template <typename Offset>
arrow::Status RegexpExtractExec(cp::KernelContext* ctx, const cp::ExecSpan& batch,
                                cp::ExecResult* out) {
  ARROW_ASSIGN_OR_RAISE(auto pattern_scalar, LiteralArgument(batch, 1, "pattern"));
  ARROW_ASSIGN_OR_RAISE(auto group_scalar, LiteralArgument(batch, 2, "group"));
  auto type = out->type()->GetSharedPtr();
  if (!pattern_scalar->is_valid || !group_scalar->is_valid) {
    ARROW_ASSIGN_OR_RAISE(auto nulls,
                          arrow::MakeArrayOfNull(type, batch.length, ctx->memory_pool()));
    out->value = nulls->data();
    return arrow::Status::OK();
  }
  const std::string_view pattern =
      checked_cast<const arrow::BaseBinaryScalar&>(*pattern_scalar).view();
  ARROW_ASSIGN_OR_RAISE(auto group_value, group_scalar->CastTo(arrow::int64()));
  const int64_t group = checked_cast<const arrow::Int64Scalar&>(*group_value).value;
  ARROW_ASSIGN_OR_RAISE(RegexpExtractPlan plan, PlanRegexpExtract(pattern, group));
  if (plan.fast) {
    return RunSubstrings<Offset>(ctx, batch, out, [&](int64_t, std::string_view row) {
      return FastExtract(plan, row);
    });
  }
  std::shared_ptr<arrow::ArrayData> holder;
  arrow::ArraySpan broadcast;
  ARROW_ASSIGN_OR_RAISE(const arrow::ArraySpan* span,
                        StringInputSpan(ctx, batch, &holder, &broadcast));
  cp::ExtractRegexOptions options(plan.named_pattern);
  auto extracted = cp::CallFunction("extract_regex", {arrow::Datum(span->ToArrayData())},
                                    &options, ctx->exec_context());
  if (!extracted.ok()) return InvalidPattern(pattern, extracted.status().message());
  std::shared_ptr<arrow::Array> fields = extracted->make_array();
  ARROW_ASSIGN_OR_RAISE(
      auto field, checked_cast<const arrow::StructArray&>(*fields).GetFlattenedField(
                      0, ctx->memory_pool()));
  out->value = field->data();
  return arrow::Status::OK();
}

// --- registration --------------------------------------------------------------------

const cp::FunctionDoc kSplitIndexDoc{
    "Field `index` (0-based) of a string split at a separator (Flink SPLIT_INDEX)",
    "Splits at every occurrence of the separator (leftmost, non-overlapping),\n"
    "keeping empty fields. Null when the string, separator or index is null, the\n"
    "string is empty, or the index is negative or past the last field. An empty\n"
    "separator is an error.",
    {"strings", "separator", "index"}};

const cp::FunctionDoc kRegexpExtractDoc{
    "Capturing group `group` of the first match of a regex (Flink REGEXP_EXTRACT)",
    "Searches each string for the leftmost match of `pattern` (RE2 syntax) and\n"
    "returns group `group` (0: the whole match). Null when the string is null\n"
    "or does not match. The pattern and group must be literals; an invalid\n"
    "pattern or a group past the last one is an error.",
    {"strings", "pattern", "group"}};

template <typename Offset>
cp::ArrayKernelExec Pick(bool split) {
  return split ? SplitIndexExec<Offset> : RegexpExtractExec<Offset>;
}

arrow::Status AddFunction(cp::FunctionRegistry* registry, const std::string& name,
                          const cp::FunctionDoc& doc, bool split) {
  auto function = std::make_shared<cp::ScalarFunction>(name, cp::Arity::Ternary(), doc);
  for (auto type : {arrow::utf8(), arrow::large_utf8()}) {
    cp::ArrayKernelExec exec =
        type->id() == arrow::Type::STRING ? Pick<int32_t>(split) : Pick<int64_t>(split);
    for (auto second : {arrow::Type::STRING, arrow::Type::LARGE_STRING}) {
      cp::ScalarKernel kernel({cp::InputType(type->id()), cp::InputType(second),
                               cp::InputType(cp::match::Integer())},
                              cp::OutputType(type), exec);
      kernel.null_handling = cp::NullHandling::COMPUTED_NO_PREALLOCATE;
      kernel.mem_allocation = cp::MemAllocation::NO_PREALLOCATE;
      kernel.can_write_into_slices = false;
      ARROW_RETURN_NOT_OK(function->AddKernel(std::move(kernel)));
    }
  }
  return registry->AddFunction(std::move(function));
}

}  // namespace

arrow::Result<RegexpExtractPlan> PlanRegexpExtract(std::string_view pattern,
                                                   int64_t group) {
  if (group < 0) {
    return arrow::Status::Invalid("regexp_extract: group ", group,
                                  " is negative (pattern '", pattern, "')");
  }
  RegexpExtractPlan plan;
  int64_t groups = 0;
  ARROW_ASSIGN_OR_RAISE(plan.named_pattern, NameGroup(pattern, group, &groups));
  if (group > groups) {
    return arrow::Status::Invalid("regexp_extract: group ", group,
                                  " is past the last group of pattern '", pattern, "' (",
                                  groups, " groups)");
  }
  RegexpExtractPlan fast;
  if (PlanFastPath(pattern, &fast)) {
    const int64_t tail_group = fast.prefix_capturing ? 2 : 1;
    if (group == 0) {
      fast.output = RegexpExtractPlan::Output::kWhole;
    } else if (group == 1 && fast.prefix_capturing) {
      fast.output = RegexpExtractPlan::Output::kPrefix;
    } else if (group == tail_group && fast.has_tail) {
      fast.output = RegexpExtractPlan::Output::kTail;
    } else {
      return plan;  // cannot happen: the group count says otherwise
    }
    fast.fast = true;
    fast.named_pattern = std::move(plan.named_pattern);
    return fast;
  }
  return plan;
}

arrow::Status RegisterStringFunctions(cp::FunctionRegistry* registry) {
  ARROW_RETURN_NOT_OK(AddFunction(registry, "split_index", kSplitIndexDoc, true));
  return AddFunction(registry, "regexp_extract", kRegexpExtractDoc, false);
}

arrow::Status EnsureStringFunctionsRegistered() {
  static const arrow::Status status = [] {
    cp::FunctionRegistry* registry = cp::GetFunctionRegistry();
    // Another copy of this library in the process may have registered them.
    if (registry->GetFunction("split_index").ok()) return arrow::Status::OK();
    return RegisterStringFunctions(registry);
  }();
  return status;
}

}  // namespace sabot
