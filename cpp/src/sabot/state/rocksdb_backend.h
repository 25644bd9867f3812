// The RocksDB keyed state backend (internal; use KeyedStateBackend::Make).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "sabot/state/backend.h"

namespace sabot {

/// One RocksDB database per operator instance in a private working directory
/// under options.local_dir (removed when the backend is destroyed), one column
/// family per state. Memory: an LRU block cache of options.rocksdb_memory_bytes
/// that index and filter blocks live in and that a WriteBufferManager charges
/// the memtables to (half of the budget at most), so the instance stays within
/// its budget whatever the state size. The WAL is off: durability comes from
/// checkpoints.
///
/// Snapshot: a native RocksDB checkpoint (memtables flushed, SST files hard
/// linked) handed to AddFiles("rocksdb", ...) with the SST files shared under
/// names unique across instances and restores ("<session>-<number>.sst"), so a
/// checkpoint storage keeps each SST once and later checkpoints only add the
/// new ones. Private files: MANIFEST, CURRENT, OPTIONS, plus SABOT_STATES (the
/// state specs) and SABOT_SST_NAMES (stored name -> RocksDB name).
///
/// Restore: one file set of exactly this instance's key groups opens the
/// database from it (files moved into the working directory); otherwise
/// (rescaling) each file set is opened read-only and the key-group range this
/// instance owns is scanned into a fresh database.
arrow::Result<std::unique_ptr<KeyedStateBackend>> MakeRocksDbBackend(
    KeyedStateBackendOptions options);

/// Reads a RocksDB snapshot directory (as written by the RocksDB backend and
/// materialized by SnapshotReader::ReadFiles): calls fn for every entry whose
/// key group is in `range` with its state spec, storage key, user key (map
/// states), payload (value without TTL header) and expiry (states with TTL).
arrow::Status IterateRocksDbCheckpoint(
    const std::string& dir, const KeyGroupRange& range,
    const std::function<arrow::Status(const StateSpec&, std::string_view,
                                      std::string_view, std::string_view,
                                      std::optional<int64_t>)>& fn);

}  // namespace sabot
