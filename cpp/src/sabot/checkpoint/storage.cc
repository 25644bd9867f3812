#include "sabot/checkpoint/storage.h"

#include <arrow/util/crc32.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace fs = std::filesystem;

namespace sabot::checkpoint {

namespace {

constexpr size_t kIoChunk = 1 << 20;

arrow::Status Errno(const std::string& what, const std::string& path, int err) {
  return arrow::Status::IOError(what, " '", path, "': ", std::strerror(err));
}

std::string Hex8(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%08x", v);
  return buf;
}

std::string ParentOf(const std::string& path) {
  return fs::path(path).parent_path().string();
}

arrow::Status WriteAll(int fd, const char* data, size_t n, const std::string& path) {
  while (n > 0) {
    ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Errno("cannot write", path, errno);
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return arrow::Status::OK();
}

std::atomic<int64_t> g_temp_counter{0};

}  // namespace

std::string CheckpointDirName(int64_t checkpoint_id) {
  return "chk-" + std::to_string(checkpoint_id);
}

std::string SanitizeName(const std::string& name) {
  std::string out;
  bool changed = name.empty() || name == "." || name == "..";
  for (char c : name) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
        c == '.' || c == '_' || c == '-') {
      out += c;
    } else {
      out += '_';
      changed = true;
    }
  }
  if (changed) {
    out += "-" + Hex8(arrow::internal::crc32(0, name.data(), name.size()));
  }
  return out;
}

std::string JoinPath(const std::string& dir, const std::string& relative) {
  return (fs::path(dir) / relative).lexically_normal().string();
}

// --- ChecksumFileStream --------------------------------------------------------------

arrow::Result<std::shared_ptr<ChecksumFileStream>> ChecksumFileStream::Open(
    const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("cannot create", path, errno);
  return std::shared_ptr<ChecksumFileStream>(new ChecksumFileStream(fd, path));
}

ChecksumFileStream::~ChecksumFileStream() {
  if (fd_ >= 0) ::close(fd_);
}

arrow::Status ChecksumFileStream::Write(const void* data, int64_t nbytes) {
  if (closed_) return arrow::Status::Invalid("write to closed file '", path_, "'");
  const auto* p = static_cast<const char*>(data);
  crc_ = arrow::internal::crc32(crc_, p, static_cast<size_t>(nbytes));
  size_ += nbytes;
  if (buffer_.size() + static_cast<size_t>(nbytes) > kIoChunk) {
    ARROW_RETURN_NOT_OK(Flush(true));
    if (static_cast<size_t>(nbytes) >= kIoChunk) {
      return WriteAll(fd_, p, static_cast<size_t>(nbytes), path_);
    }
  }
  buffer_.append(p, static_cast<size_t>(nbytes));
  return arrow::Status::OK();
}

arrow::Status ChecksumFileStream::Flush(bool force) {
  if (buffer_.empty()) return arrow::Status::OK();
  auto st = WriteAll(fd_, buffer_.data(), buffer_.size(), path_);
  buffer_.clear();
  return st;
}

arrow::Status ChecksumFileStream::Close() {
  if (closed_) return arrow::Status::OK();
  closed_ = true;
  arrow::Status st = Flush(true);
  if (st.ok() && ::fsync(fd_) != 0) st = Errno("cannot fsync", path_, errno);
  if (::close(fd_) != 0 && st.ok()) st = Errno("cannot close", path_, errno);
  fd_ = -1;
  return st;
}

// --- durable primitives
// -----------------------------------------------------------------

arrow::Status FsyncPath(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno("cannot open", path, errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  // Some file systems refuse fsync on directories; that is not an I/O error.
  if (rc != 0 && err != EINVAL && err != EBADF) return Errno("cannot fsync", path, err);
  return arrow::Status::OK();
}

arrow::Status CreateDirectories(const std::string& path) {
  std::vector<std::string> created;
  fs::path p(path);
  while (!p.empty()) {
    std::error_code ec;
    if (fs::exists(p, ec)) break;
    created.push_back(p.string());
    if (!p.has_parent_path() || p.parent_path() == p) break;
    p = p.parent_path();
  }
  for (auto it = created.rbegin(); it != created.rend(); ++it) {
    if (::mkdir(it->c_str(), 0755) != 0 && errno != EEXIST) {
      return Errno("cannot create directory", *it, errno);
    }
    std::string parent = ParentOf(*it);
    if (!parent.empty()) ARROW_RETURN_NOT_OK(FsyncPath(parent));
  }
  std::error_code ec;
  if (!fs::is_directory(path, ec)) {
    return arrow::Status::IOError("cannot create directory '", path,
                                  "': a file of that name is in the way");
  }
  return arrow::Status::OK();
}

arrow::Status WriteFileAtomically(const std::string& path, const std::string& contents) {
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid()) + "-" +
                          std::to_string(g_temp_counter.fetch_add(1));
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("cannot create", tmp, errno);
  arrow::Status st = WriteAll(fd, contents.data(), contents.size(), tmp);
  if (st.ok() && ::fsync(fd) != 0) st = Errno("cannot fsync", tmp, errno);
  if (::close(fd) != 0 && st.ok()) st = Errno("cannot close", tmp, errno);
  if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    st = Errno("cannot rename to", path, errno);
  }
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return st;
  }
  return FsyncPath(ParentOf(path));
}

arrow::Result<StoredFile> CopyFileDurably(const std::string& from,
                                          const std::string& to) {
  int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return Errno("cannot read", from, errno);
  auto out_result = ChecksumFileStream::Open(to);
  if (!out_result.ok()) {
    ::close(in);
    return out_result.status();
  }
  auto out = *out_result;
  std::vector<char> buffer(kIoChunk);
  arrow::Status st;
  for (;;) {
    ssize_t n = ::read(in, buffer.data(), buffer.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      st = Errno("cannot read", from, errno);
      break;
    }
    if (n == 0) break;
    st = out->Write(buffer.data(), n);
    if (!st.ok()) break;
  }
  ::close(in);
  auto close_st = out->Close();
  if (st.ok()) st = close_st;
  if (!st.ok()) {
    ::unlink(to.c_str());
    return st;
  }
  StoredFile f;
  f.path = to;
  f.size = out->size();
  f.crc32 = out->crc32();
  return f;
}

arrow::Result<StoredFile> ChecksumFile(const std::string& path) {
  int in = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return Errno("cannot read", path, errno);
  std::vector<char> buffer(kIoChunk);
  StoredFile f;
  f.path = path;
  for (;;) {
    ssize_t n = ::read(in, buffer.data(), buffer.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(in);
      return Errno("cannot read", path, err);
    }
    if (n == 0) break;
    f.crc32 = arrow::internal::crc32(f.crc32, buffer.data(), static_cast<size_t>(n));
    f.size += n;
  }
  ::close(in);
  return f;
}

arrow::Status LinkOrCopy(const std::string& from, const std::string& to) {
  if (::link(from.c_str(), to.c_str()) == 0) return arrow::Status::OK();
  if (errno == EEXIST) {
    ::unlink(to.c_str());
    if (::link(from.c_str(), to.c_str()) == 0) return arrow::Status::OK();
  }
  return CopyFileDurably(from, to).status();
}

arrow::Status RemoveAll(const std::string& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec) return arrow::Status::IOError("cannot remove '", path, "': ", ec.message());
  return arrow::Status::OK();
}

// --- reading
// ------------------------------------------------------------------------------

arrow::Result<CheckpointMetadata> LoadMetadata(const std::string& path) {
  std::error_code ec;
  std::string dir = path;
  std::string file = JoinPath(path, kMetadataFileName);
  if (!fs::is_directory(path, ec)) {
    if (fs::path(path).filename() == kMetadataFileName && fs::exists(path, ec)) {
      file = path;
      dir = ParentOf(path);
    } else if (!fs::exists(path, ec)) {
      return arrow::Status::IOError("checkpoint '", path, "' does not exist");
    } else {
      return arrow::Status::IOError("'", path,
                                    "' is neither a checkpoint directory nor its ",
                                    kMetadataFileName, " file");
    }
  }
  if (!fs::exists(file, ec)) {
    if (!ListCheckpoints(dir).empty()) {
      return arrow::Status::IOError(
          "'", dir, "' is a checkpoint directory, not one checkpoint: restore from ",
          "'latest' (with it as checkpoint_dir) or name one of its chk-<id> directories");
    }
    return arrow::Status::IOError("checkpoint '", dir, "' has no ", kMetadataFileName,
                                  " (incomplete, or not a checkpoint)");
  }
  int in = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return Errno("cannot read checkpoint metadata", file, errno);
  std::string text;
  char buffer[65536];
  for (;;) {
    ssize_t n = ::read(in, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(in);
      return Errno("cannot read checkpoint metadata", file, err);
    }
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
  }
  ::close(in);
  ARROW_ASSIGN_OR_RAISE(auto metadata, MetadataFromJson(text, file));
  metadata.directory = fs::absolute(dir).lexically_normal().string();
  if (!metadata.directory.empty() && metadata.directory.back() == '/' &&
      metadata.directory.size() > 1) {
    metadata.directory.pop_back();
  }
  return metadata;
}

arrow::Status VerifyFiles(const CheckpointMetadata& metadata) {
  for (const auto& f : metadata.AllFiles()) {
    const std::string path = JoinPath(metadata.directory, f.path);
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
      return arrow::Status::IOError("checkpoint '", metadata.directory, "': state file '",
                                    path, "' is missing (", std::strerror(errno), ")");
    }
    if (st.st_size != f.size) {
      return arrow::Status::IOError("checkpoint '", metadata.directory, "': state file '",
                                    path, "' has ", st.st_size,
                                    " bytes, the metadata says ", f.size);
    }
    ARROW_ASSIGN_OR_RAISE(auto actual, ChecksumFile(path));
    if (actual.crc32 != f.crc32) {
      return arrow::Status::IOError(
          "checkpoint '", metadata.directory, "': state file '", path, "' has CRC-32 ",
          Hex8(actual.crc32), ", the metadata says ", Hex8(f.crc32), " (corrupted)");
    }
  }
  return arrow::Status::OK();
}

std::vector<ListedCheckpoint> ListCheckpoints(const std::string& directory) {
  std::vector<ListedCheckpoint> out;
  std::error_code ec;
  if (directory.empty() || !fs::is_directory(directory, ec)) return out;
  for (const auto& entry : fs::directory_iterator(directory, ec)) {
    std::string name = entry.path().filename().string();
    if (name.rfind("chk-", 0) != 0 || !entry.is_directory(ec)) continue;
    const std::string digits = name.substr(4);
    if (digits.empty() || digits.size() > 18 ||
        !std::all_of(digits.begin(), digits.end(), ::isdigit)) {
      continue;
    }
    ListedCheckpoint c;
    c.id = std::stoll(digits);
    c.path = entry.path().string();
    c.has_metadata = fs::exists(entry.path() / kMetadataFileName, ec);
    out.push_back(std::move(c));
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.id < b.id; });
  return out;
}

arrow::Result<std::optional<CheckpointMetadata>> ResolveRestore(
    const std::string& restore_from, const std::string& directory,
    std::vector<std::string>* log) {
  if (restore_from.empty()) return std::nullopt;
  if (restore_from != "latest") {
    auto loaded = LoadMetadata(restore_from);
    arrow::Status st = loaded.status();
    if (st.ok()) st = VerifyFiles(*loaded);
    if (!st.ok()) {
      return st.WithMessage("cannot restore from '", restore_from, "': ", st.message());
    }
    log->push_back("restoring from " + loaded->kind + " " +
                   std::to_string(loaded->checkpoint_id) + " at '" + loaded->directory +
                   "'");
    return std::optional<CheckpointMetadata>(std::move(*loaded));
  }
  if (directory.empty()) {
    return arrow::Status::Invalid(
        "restore_from='latest' needs a checkpoint directory (checkpoint_dir)");
  }
  auto listed = ListCheckpoints(directory);
  std::vector<std::string> refused;
  for (auto it = listed.rbegin(); it != listed.rend(); ++it) {
    if (!it->has_metadata) {
      log->push_back("skipping '" + it->path + "': no " + kMetadataFileName +
                     " (partial checkpoint)");
      continue;
    }
    auto loaded = LoadMetadata(it->path);
    arrow::Status st = loaded.status();
    if (st.ok()) st = VerifyFiles(*loaded);
    if (!st.ok()) {
      std::string line = "refusing checkpoint '" + it->path + "': " + st.message();
      log->push_back(line);
      refused.push_back(line);
      continue;
    }
    log->push_back("restoring from checkpoint " + std::to_string(loaded->checkpoint_id) +
                   " at '" + loaded->directory + "'");
    return std::optional<CheckpointMetadata>(std::move(*loaded));
  }
  if (!refused.empty()) {
    std::string reasons;
    for (const auto& r : refused) reasons += "; " + r;
    return arrow::Status::IOError("no usable checkpoint in '", directory, "'", reasons);
  }
  log->push_back("no completed checkpoint in '" + directory + "': starting fresh");
  return std::nullopt;
}

// --- CheckpointStore
// ------------------------------------------------------------------------

CheckpointStore::CheckpointStore(std::string directory, int retain)
    : directory_(std::move(directory)), retain_(std::max(retain, 1)) {}

std::string CheckpointStore::CheckpointPath(int64_t checkpoint_id) const {
  return JoinPath(directory_, CheckpointDirName(checkpoint_id));
}

arrow::Status CheckpointStore::Open(std::vector<std::string>* log) {
  retained_.clear();
  for (const auto& c : ListCheckpoints(directory_)) {
    max_id_ = std::max(max_id_, c.id);
    if (!c.has_metadata) {
      log->push_back("removing partial checkpoint '" + c.path + "' (no " +
                     kMetadataFileName + ")");
      (void)RemoveAll(c.path);
      continue;
    }
    auto loaded = LoadMetadata(c.path);
    if (!loaded.ok()) {
      log->push_back("ignoring checkpoint '" + c.path +
                     "': " + loaded.status().message());
      continue;
    }
    if (loaded->kind != "checkpoint") continue;
    retained_.push_back(std::move(*loaded));
  }
  for (const auto& m : retained_) {
    for (const auto& f : m.AllFiles()) {
      if (f.path.rfind("../shared/", 0) == 0) shared_present_.insert(f.path.substr(10));
    }
  }
  return arrow::Status::OK();
}

arrow::Result<StoredFile> CheckpointStore::PutShared(
    const std::string& local_path, const std::string& uid, const std::string& table,
    const std::string& name, const std::string& metadata_dir, bool self_contained) {
  struct stat st;
  if (::stat(local_path.c_str(), &st) != 0) {
    return Errno("cannot read shared state file", local_path, errno);
  }
  const int64_t mtime_ns =
      static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  uint32_t crc = 0;
  auto cached = crc_cache_.find(local_path);
  if (cached != crc_cache_.end() && cached->second.inode == st.st_ino &&
      cached->second.size == st.st_size && cached->second.mtime_ns == mtime_ns) {
    crc = cached->second.crc32;
  } else {
    ARROW_ASSIGN_OR_RAISE(auto sum, ChecksumFile(local_path));
    crc = sum.crc32;
    crc_cache_[local_path] = CachedCrc{static_cast<uint64_t>(st.st_ino),
                                       static_cast<int64_t>(st.st_size), mtime_ns, crc};
  }
  const std::string key = SanitizeName(uid) + "/" + SanitizeName(table) + "/" +
                          SanitizeName(name) + "." + std::to_string(st.st_size) + "-" +
                          Hex8(crc);
  StoredFile out;
  out.size = st.st_size;
  out.crc32 = crc;
  auto copy = [&](const std::string& dest) -> arrow::Status {
    ARROW_RETURN_NOT_OK(CreateDirectories(ParentOf(dest)));
    const std::string tmp = dest + ".tmp";
    ARROW_ASSIGN_OR_RAISE(auto copied, CopyFileDurably(local_path, tmp));
    if (copied.crc32 != crc || copied.size != out.size) {
      ::unlink(tmp.c_str());
      return arrow::Status::IOError("shared state file '", local_path,
                                    "' changed while it was stored (shared files "
                                    "must be immutable)");
    }
    if (::rename(tmp.c_str(), dest.c_str()) != 0) {
      int err = errno;
      ::unlink(tmp.c_str());
      return Errno("cannot rename to", dest, err);
    }
    return FsyncPath(ParentOf(dest));
  };
  if (self_contained) {
    ARROW_RETURN_NOT_OK(copy(JoinPath(metadata_dir, "shared/" + key)));
    out.path = "shared/" + key;
    return out;
  }
  const std::string dest = JoinPath(directory_, "shared/" + key);
  std::error_code ec;
  if (!shared_present_.count(key) || !fs::exists(dest, ec)) {
    ARROW_RETURN_NOT_OK(copy(dest));
    shared_present_.insert(key);
    shared_bytes_copied_ += out.size;
  }
  out.path = "../shared/" + key;
  return out;
}

arrow::Status CheckpointStore::AddCompleted(CheckpointMetadata metadata,
                                            std::vector<std::string>* log) {
  max_id_ = std::max(max_id_, metadata.checkpoint_id);
  retained_.push_back(std::move(metadata));
  std::sort(retained_.begin(), retained_.end(), [](const auto& a, const auto& b) {
    return a.checkpoint_id < b.checkpoint_id;
  });
  arrow::Status first_error;
  while (static_cast<int>(retained_.size()) > retain_) {
    const CheckpointMetadata& oldest = retained_.front();
    const std::string path = oldest.directory;
    // The metadata goes first: a crash in the middle leaves a partial checkpoint,
    // which is never restored from and is removed on the next start.
    ::unlink(JoinPath(path, kMetadataFileName).c_str());
    auto st = RemoveAll(path);
    if (st.ok()) {
      log->push_back("deleted checkpoint " + std::to_string(oldest.checkpoint_id) +
                     " (retaining " + std::to_string(retain_) + ")");
    } else if (first_error.ok()) {
      first_error = st;
    }
    retained_.erase(retained_.begin());
  }
  auto gc = CollectGarbage(log);
  if (first_error.ok()) first_error = gc;
  return first_error;
}

arrow::Status CheckpointStore::CollectGarbage(std::vector<std::string>* log) {
  std::set<std::string> referenced;
  for (const auto& m : retained_) {
    for (const auto& f : m.AllFiles()) {
      if (f.path.rfind("../shared/", 0) == 0) referenced.insert(f.path.substr(10));
    }
  }
  const fs::path root = fs::path(directory_) / "shared";
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    shared_present_.clear();
    return arrow::Status::OK();
  }
  int64_t removed = 0;
  std::vector<fs::path> dirs;
  for (auto it = fs::recursive_directory_iterator(root, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_directory(ec)) {
      dirs.push_back(it->path());
      continue;
    }
    std::string rel = fs::relative(it->path(), root, ec).string();
    if (!referenced.count(rel)) {
      fs::remove(it->path(), ec);
      ++removed;
    }
  }
  // Deepest first: remove directories that became empty.
  std::sort(dirs.begin(), dirs.end(),
            [](const fs::path& a, const fs::path& b) { return a.string() > b.string(); });
  for (const auto& d : dirs) {
    if (fs::is_empty(d, ec)) fs::remove(d, ec);
  }
  if (removed > 0) {
    log->push_back("removed " + std::to_string(removed) +
                   " shared file(s) no retained checkpoint references");
  }
  shared_present_ = std::move(referenced);
  return arrow::Status::OK();
}

}  // namespace sabot::checkpoint
