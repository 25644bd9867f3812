// The `_metadata` file of a checkpoint or savepoint: what was written, by which
// operator instance, for which key groups, with every file's size and checksum.
// The layout is documented in docs/checkpoints.md.
#pragma once

#include <arrow/result.h>
#include <arrow/status.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "sabot/state/snapshot.h"

namespace sabot::checkpoint {

/// Name of the metadata file inside a checkpoint or savepoint directory.
inline constexpr const char* kMetadataFileName = "_metadata";
/// Version of the metadata format written by this build.
inline constexpr int kMetadataFormatVersion = 1;

/// One stored file. `path` is relative to the directory holding `_metadata`
/// (shared files of a checkpoint live in `../shared/...`).
struct StoredFile {
  std::string path;
  int64_t size = 0;
  uint32_t crc32 = 0;  ///< zlib CRC-32 of the whole file (Python: zlib.crc32)
  int64_t rows = -1;   ///< rows of an Arrow IPC state file; -1 for other files
};

/// The files an operator instance handed over with SnapshotWriter::AddFiles.
struct StoredFileSet {
  struct Entry {
    std::string name;  ///< name relative to the operator's local directory
    StoredFile file;
  };
  std::vector<Entry> private_files;
  std::vector<Entry> shared_files;
};

/// What one operator instance wrote.
struct InstanceMetadata {
  int index = 0;
  KeyGroupRange key_groups;
  std::map<std::string, std::vector<StoredFile>> keyed;           ///< table -> files
  std::map<std::string, std::vector<StoredFile>> operator_state;  ///< table -> files
  std::map<std::string, StoredFileSet> files;                     ///< table -> set
  /// Readable copy of a source's operator state (its read positions), one JSON
  /// array of row objects per table; informational only, never read back.
  std::map<std::string, std::string> positions_json;
};

struct OperatorMetadata {
  std::string uid;
  int parallelism = 1;
  std::vector<InstanceMetadata> instances;  ///< sorted by index
};

/// Everything a `_metadata` file holds.
struct CheckpointMetadata {
  int format_version = kMetadataFormatVersion;
  int64_t checkpoint_id = 0;
  std::string kind = "checkpoint";  ///< "checkpoint" or "savepoint"
  std::string job_name;
  int64_t timestamp_ms = 0;  ///< wall clock when the checkpoint completed
  int max_parallelism = 128;
  std::map<std::string, OperatorMetadata> operators;  ///< by uid

  /// The directory the metadata was loaded from / written to (not serialized).
  std::string directory;

  /// Every stored file, each once (a shared file referenced twice counts once).
  std::vector<StoredFile> AllFiles() const;
  /// Total bytes of all stored files.
  int64_t TotalBytes() const;
};

/// Serializes to the JSON text of a `_metadata` file.
std::string MetadataToJson(const CheckpointMetadata& metadata);
/// Parses a `_metadata` file's text; errors name `path`.
arrow::Result<CheckpointMetadata> MetadataFromJson(const std::string& json,
                                                   const std::string& path);

/// Escapes `s` as the body of a JSON string.
std::string JsonEscape(const std::string& s);

}  // namespace sabot::checkpoint
