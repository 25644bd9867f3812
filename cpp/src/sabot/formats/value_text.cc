#include "sabot/formats/value_text.h"

#include <arrow/type.h>
#include <arrow/util/utf8.h>
#include <arrow/util/value_parsing.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>
#include <memory>
#include <system_error>

namespace sabot {

bool ParseInt64Text(std::string_view text, int64_t* out) {
  if (text.empty()) return false;
  const char* end = text.data() + text.size();
  auto res = std::from_chars(text.data(), end, *out);
  return res.ec == std::errc() && res.ptr == end;
}

bool ParseUInt64Text(std::string_view text, uint64_t* out) {
  if (text.empty()) return false;
  const char* end = text.data() + text.size();
  auto res = std::from_chars(text.data(), end, *out);
  return res.ec == std::errc() && res.ptr == end;
}

namespace {

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != b[i]) return false;
  }
  return true;
}

// Days from 1970-01-01 to year-month-day (proleptic Gregorian calendar).
int64_t DaysFromCivil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

bool ParseDigits(std::string_view text, size_t pos, size_t count, int64_t* out) {
  if (pos + count > text.size()) return false;
  int64_t value = 0;
  for (size_t i = pos; i < pos + count; ++i) {
    const char c = text[i];
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  *out = value;
  return true;
}

}  // namespace

bool ParseDoubleText(std::string_view text, double* out) {
  if (text.empty()) return false;
  if (EqualsIgnoreCase(text, "nan")) {
    *out = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  if (EqualsIgnoreCase(text, "inf") || EqualsIgnoreCase(text, "infinity")) {
    *out = std::numeric_limits<double>::infinity();
    return true;
  }
  if (EqualsIgnoreCase(text, "-inf") || EqualsIgnoreCase(text, "-infinity")) {
    *out = -std::numeric_limits<double>::infinity();
    return true;
  }
  const char* end = text.data() + text.size();
  auto res = std::from_chars(text.data(), end, *out, std::chars_format::general);
  return res.ec == std::errc() && res.ptr == end && std::isfinite(*out);
}

bool ParseBoolText(std::string_view text, bool* out) {
  if (text == "1" || EqualsIgnoreCase(text, "true")) {
    *out = true;
    return true;
  }
  if (text == "0" || EqualsIgnoreCase(text, "false")) {
    *out = false;
    return true;
  }
  return false;
}

bool ParseDate32Text(std::string_view text, int32_t* out) {
  int64_t y, m, d;
  if (text.size() != 10 || text[4] != '-' || text[7] != '-') return false;
  if (!ParseDigits(text, 0, 4, &y) || !ParseDigits(text, 5, 2, &m) ||
      !ParseDigits(text, 8, 2, &d)) {
    return false;
  }
  static constexpr int kDaysInMonth[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m < 1 || m > 12 || d < 1 || d > kDaysInMonth[m - 1]) return false;
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (m == 2 && d == 29 && !leap) return false;
  *out = static_cast<int32_t>(DaysFromCivil(y, m, d));
  return true;
}

bool ParseTimestampText(std::string_view text, arrow::TimeUnit::type unit, int64_t* out) {
  static const std::shared_ptr<arrow::TimestampParser> parser =
      arrow::TimestampParser::MakeISO8601();
  if (text.empty()) return false;
  return (*parser)(text.data(), text.size(), unit, out);
}

bool DecodeBase64(std::string_view text, std::string* out) {
  out->clear();
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  if (text.size() % 4 == 1) return false;
  out->reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char ch : text) {
    int v;
    if (ch >= 'A' && ch <= 'Z') {
      v = ch - 'A';
    } else if (ch >= 'a' && ch <= 'z') {
      v = ch - 'a' + 26;
    } else if (ch >= '0' && ch <= '9') {
      v = ch - '0' + 52;
    } else if (ch == '+') {
      v = 62;
    } else if (ch == '/') {
      v = 63;
    } else {
      return false;
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return true;
}

void AppendDate32Text(int32_t days, std::string* out) {
  const int64_t z = int64_t{days} + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int64_t day = doy - (153 * mp + 2) / 5 + 1;
  const int64_t month = mp < 10 ? mp + 3 : mp - 9;
  int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  if (year < 0) {
    out->push_back('-');
    year = -year;
  }
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof(buf), year);
  for (auto len = res.ptr - buf; len < 4; ++len) out->push_back('0');
  out->append(buf, static_cast<size_t>(res.ptr - buf));
  const char tail[6] = {
      '-', static_cast<char>('0' + month / 10), static_cast<char>('0' + month % 10),
      '-', static_cast<char>('0' + day / 10),   static_cast<char>('0' + day % 10)};
  out->append(tail, sizeof(tail));
}

bool IsValidUtf8(std::string_view text) {
  static const bool initialized = [] {
    arrow::util::InitializeUTF8();
    return true;
  }();
  (void)initialized;
  return arrow::util::ValidateUTF8(text);
}

}  // namespace sabot
