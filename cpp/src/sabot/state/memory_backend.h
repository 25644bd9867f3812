// The in-memory keyed state backend (internal; use KeyedStateBackend::Make).
#pragma once

#include <arrow/record_batch.h>

#include <memory>

#include "sabot/state/backend.h"

namespace sabot {

/// Hash maps per state whose memory comes from options.pool (the job's pool, so
/// the job's memory cap bounds the state). Snapshots write every live entry as
/// keyed table "kv/<state>" (KeyedStateTableBuilder) with its key group.
arrow::Result<std::unique_ptr<KeyedStateBackend>> MakeMemoryBackend(
    KeyedStateBackendOptions options);

/// Builds the backend-neutral keyed tables of snapshots: columns key (storage
/// key), user_key (map states; else empty), value (payload, no TTL header),
/// expires_ms (null without TTL), and the key group of each row.
class KeyedStateTableBuilder {
 public:
  KeyedStateTableBuilder(const std::string& table, SnapshotWriter* writer,
                         arrow::MemoryPool* pool);
  ~KeyedStateTableBuilder();
  /// `stored` is the value as stored; `has_ttl` says whether it has a header.
  arrow::Status Add(std::string_view storage_key, std::string_view user_key,
                    std::string_view stored, bool has_ttl);
  /// Writes what is buffered (also done every 64K rows).
  arrow::Status Flush();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sabot
