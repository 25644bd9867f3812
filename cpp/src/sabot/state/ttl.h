// Stored value layouts shared by both backends: the TTL header and list
// values (see state/backend.h).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace sabot {

/// Bytes of the TTL header: the expiry time, ms, little-endian int64.
inline constexpr size_t kTtlHeaderBytes = 8;

inline void AppendExpiry(int64_t expiry_ms, std::string* out) {
  out->append(reinterpret_cast<const char*>(&expiry_ms), kTtlHeaderBytes);
}
/// The expiry of a stored value with a TTL header (caller checked the size).
inline int64_t ReadExpiry(std::string_view stored) {
  int64_t expiry;
  std::memcpy(&expiry, stored.data(), kTtlHeaderBytes);
  return expiry;
}
/// An entry with expiry `expiry_ms` is visible strictly before it.
inline bool IsExpired(int64_t expiry_ms, int64_t now_ms) { return expiry_ms <= now_ms; }

/// Appends one list element: [4-byte length][bytes].
inline void AppendListElement(std::string_view element, std::string* out) {
  const uint32_t len = static_cast<uint32_t>(element.size());
  out->append(reinterpret_cast<const char*>(&len), 4);
  out->append(element);
}

/// Calls fn(element) for each element of a list payload; false on a corrupt
/// payload.
template <typename Fn>
bool ForEachListElement(std::string_view payload, Fn&& fn) {
  size_t pos = 0;
  while (pos < payload.size()) {
    if (pos + 4 > payload.size()) return false;
    uint32_t len;
    std::memcpy(&len, payload.data() + pos, 4);
    pos += 4;
    if (pos + len > payload.size()) return false;
    fn(payload.substr(pos, len));
    pos += len;
  }
  return true;
}

/// The list value after appending `operand` (stored form) to `existing`
/// (stored form, or null when absent). With a TTL the result carries the
/// operand's expiry, and an existing list that had expired before the append
/// was written (its expiry <= the operand's write time, expiry - ttl) is
/// dropped rather than extended, so an append never revives expired elements.
inline void MergeListValue(const std::string_view* existing, std::string_view operand,
                           int64_t ttl_ms, std::string* out) {
  out->clear();
  if (ttl_ms <= 0) {
    if (existing) out->append(*existing);
    out->append(operand);
    return;
  }
  const int64_t expiry = ReadExpiry(operand);
  if (!existing || existing->size() < kTtlHeaderBytes ||
      ReadExpiry(*existing) <= expiry - ttl_ms) {
    out->append(operand);
    return;
  }
  AppendExpiry(expiry, out);
  out->append(existing->substr(kTtlHeaderBytes));
  out->append(operand.substr(kTtlHeaderBytes));
}

}  // namespace sabot
