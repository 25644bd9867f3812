// Durable checkpoint storage on a file system: the directory layout, durable
// writes (fsync, metadata written last by rename), shared files stored once
// (incremental checkpoints), retention and garbage collection, and choosing
// and validating the checkpoint to restore from.
//
// Layout (docs/checkpoints.md):
//
//   <dir>/chk-<id>/_metadata                          JSON, written last
//   <dir>/chk-<id>/<uid>/<instance>/keyed.<table>[.<n>].arrow
//   <dir>/chk-<id>/<uid>/<instance>/op.<table>[.<n>].arrow
//   <dir>/chk-<id>/<uid>/<instance>/files.<table>/<name>   (private files)
//   <dir>/shared/<uid>/<table>/<name>.<size>-<crc32>       (shared files)
//   <savepoint>/...   the same, with shared files under <savepoint>/shared/
//
// <uid> and <table> are sanitized for file names (see SanitizeName).
#pragma once

#include <arrow/io/interfaces.h>
#include <arrow/result.h>
#include <arrow/status.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sabot/checkpoint/metadata.h"

namespace sabot::checkpoint {

/// "chk-<id>"
std::string CheckpointDirName(int64_t checkpoint_id);
/// Keeps [A-Za-z0-9._-]; any other character becomes '_' and the CRC-32 of the
/// original is appended, so that different names never collide.
std::string SanitizeName(const std::string& name);
/// `dir` + "/" + `relative`, normalized (resolves "..").
std::string JoinPath(const std::string& dir, const std::string& relative);

// --- durable file primitives ------------------------------------------------------

/// An output stream over a new file that computes the CRC-32 of what it writes;
/// Close fsyncs the file.
class ChecksumFileStream : public arrow::io::OutputStream {
 public:
  static arrow::Result<std::shared_ptr<ChecksumFileStream>> Open(const std::string& path);
  arrow::Status Close() override;
  bool closed() const override { return closed_; }
  arrow::Result<int64_t> Tell() const override { return size_; }
  arrow::Status Write(const void* data, int64_t nbytes) override;
  using arrow::io::OutputStream::Write;

  uint32_t crc32() const { return crc_; }
  int64_t size() const { return size_; }
  ~ChecksumFileStream() override;

 private:
  ChecksumFileStream(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  arrow::Status Flush(bool force);
  int fd_;
  std::string path_;
  std::string buffer_;
  uint32_t crc_ = 0;
  int64_t size_ = 0;
  bool closed_ = false;
};

/// fsyncs a file or a directory.
arrow::Status FsyncPath(const std::string& path);
/// Creates `path` and its parents; fsyncs each created directory's parent.
arrow::Status CreateDirectories(const std::string& path);
/// Writes `contents` to `path` durably: a temporary name, fsync, rename, fsync
/// of the directory. Readers see the old file or the whole new one.
arrow::Status WriteFileAtomically(const std::string& path, const std::string& contents);
/// Copies `from` to the new file `to` (fsynced) and returns size and CRC-32.
arrow::Result<StoredFile> CopyFileDurably(const std::string& from, const std::string& to);
/// Size and CRC-32 of a file.
arrow::Result<StoredFile> ChecksumFile(const std::string& path);
/// Hard-links `from` to `to`, or copies when linking is impossible.
arrow::Status LinkOrCopy(const std::string& from, const std::string& to);
/// Removes a file or a directory tree; a missing path is fine.
arrow::Status RemoveAll(const std::string& path);

// --- reading checkpoints ----------------------------------------------------------

/// Reads and parses `<path>/_metadata` (or `path` itself when it names the
/// metadata file). Errors name the path.
arrow::Result<CheckpointMetadata> LoadMetadata(const std::string& path);
/// Checks that every file the metadata names exists with the recorded size and
/// CRC-32. The error names the first bad file and what is wrong with it.
arrow::Status VerifyFiles(const CheckpointMetadata& metadata);

/// A `chk-<id>` directory found in a checkpoint directory.
struct ListedCheckpoint {
  int64_t id = 0;
  std::string path;
  bool has_metadata = false;
};
/// The chk-<id> directories of `directory`, by ascending id.
std::vector<ListedCheckpoint> ListCheckpoints(const std::string& directory);

/// The checkpoint to restore from. `restore_from` is "latest" (the newest
/// checkpoint of `directory` that loads and verifies; a corrupted or partial one
/// is refused with the reason appended to `log` and the previous one is tried;
/// nullopt when there is none at all) or the path of a checkpoint or savepoint
/// directory (an error if it does not load and verify).
arrow::Result<std::optional<CheckpointMetadata>> ResolveRestore(
    const std::string& restore_from, const std::string& directory,
    std::vector<std::string>* log);

// --- the store of one job's checkpoints ---------------------------------------------

/// The checkpoints of one job in one directory: where a new checkpoint goes,
/// shared files stored once, retention and garbage collection.
///
/// Threading contract: used by the checkpoint coordinator's I/O thread only.
class CheckpointStore {
 public:
  CheckpointStore(std::string directory, int retain);

  /// Creates the directory, lists the completed checkpoints (for retention and
  /// shared-file references) and removes partial ones (no _metadata).
  arrow::Status Open(std::vector<std::string>* log);

  const std::string& directory() const { return directory_; }
  std::string CheckpointPath(int64_t checkpoint_id) const;
  /// The highest checkpoint id present in the directory (0 when none).
  int64_t max_checkpoint_id() const { return max_id_; }
  /// Completed checkpoints kept, by ascending id.
  const std::vector<CheckpointMetadata>& retained() const { return retained_; }

  /// Stores shared file `local_path` of (uid, table) for a checkpoint whose
  /// metadata lives in `metadata_dir`: a file with the same name, size and
  /// CRC-32 already stored is referenced, not copied again. `self_contained`
  /// (savepoints) copies it into `metadata_dir`/shared instead.
  arrow::Result<StoredFile> PutShared(const std::string& local_path,
                                      const std::string& uid, const std::string& table,
                                      const std::string& name,
                                      const std::string& metadata_dir,
                                      bool self_contained);

  /// Checkpoint `metadata` completed: keep it, delete the checkpoints beyond
  /// `retain` and the shared files no retained checkpoint references.
  arrow::Status AddCompleted(CheckpointMetadata metadata, std::vector<std::string>* log);

  /// Bytes of shared files copied (not referenced) so far.
  int64_t shared_bytes_copied() const { return shared_bytes_copied_; }

 private:
  arrow::Status CollectGarbage(std::vector<std::string>* log);

  std::string directory_;
  int retain_;
  int64_t max_id_ = 0;
  std::vector<CheckpointMetadata> retained_;
  // Keys (paths below shared/) of the shared files known to be stored.
  std::set<std::string> shared_present_;
  int64_t shared_bytes_copied_ = 0;
  // CRC-32 of local files by path, valid while inode, size and mtime match
  // (shared files are immutable: this makes an unchanged file cost one stat).
  struct CachedCrc {
    uint64_t inode = 0;
    int64_t size = 0;
    int64_t mtime_ns = 0;
    uint32_t crc32 = 0;
  };
  std::map<std::string, CachedCrc> crc_cache_;
};

}  // namespace sabot::checkpoint
