// Checkpoints of the file connectors, driven through the operator hooks with an
// in-memory snapshot: the source resumes each file where it stopped (also at
// another parallelism), and the sink commits in two phases (in-progress files
// renamed when the checkpoint completes; a restore finishes the renames of its
// checkpoint and drops in-progress files written after it).
#include <arrow/api.h>
#include <arrow/io/file.h>
#include <gtest/gtest.h>
#include <parquet/arrow/reader.h>
#include <parquet/arrow/writer.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "sabot/connectors/file/file_sink.h"
#include "sabot/connectors/file/file_source.h"
#include "sabot/state/snapshot.h"

namespace sabot {
namespace {

namespace fs = std::filesystem;

class NullCollector : public Collector {
 public:
  arrow::Status Emit(std::shared_ptr<arrow::RecordBatch>) override {
    return arrow::Status::OK();
  }
  arrow::Status EmitWatermark(int64_t) override { return arrow::Status::OK(); }
};

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "sabot_ckpt_test_XXXXXX").string();
    char* made = mkdtemp(pattern.data());
    if (made != nullptr) path_ = made;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::shared_ptr<arrow::Schema> IdSchema() {
  return arrow::schema({arrow::field("id", arrow::int64())});
}

/// Rows first .. first + n - 1 in one column "id".
std::shared_ptr<arrow::RecordBatch> Ids(int64_t first, int64_t n) {
  arrow::Int64Builder b;
  for (int64_t i = 0; i < n; ++i) EXPECT_TRUE(b.Append(first + i).ok());
  std::shared_ptr<arrow::Array> a;
  EXPECT_TRUE(b.Finish(&a).ok());
  return arrow::RecordBatch::Make(IdSchema(), n, {a});
}

void CollectIds(const std::shared_ptr<arrow::RecordBatch>& batch,
                std::multiset<int64_t>* out) {
  const auto& ids = static_cast<const arrow::Int64Array&>(*batch->column(0));
  for (int64_t i = 0; i < ids.length(); ++i) out->insert(ids.Value(i));
}

OperatorContext Context(const std::string& name, int instance, int parallelism,
                        SnapshotReader* restore = nullptr) {
  OperatorContext ctx;
  ctx.operator_name = name;
  ctx.instance_index = instance;
  ctx.parallelism = parallelism;
  ctx.restore = restore;
  return ctx;
}

void WriteParquet(const fs::path& path, int64_t first, int64_t rows,
                  int64_t row_group_size) {
  auto table = arrow::Table::FromRecordBatches({Ids(first, rows)}).ValueOrDie();
  auto out = arrow::io::FileOutputStream::Open(path.string()).ValueOrDie();
  ASSERT_TRUE(parquet::arrow::WriteTable(*table, arrow::default_memory_pool(), out,
                                         row_group_size)
                  .ok());
  ASSERT_TRUE(out->Close().ok());
}

/// Every id in the committed (visible) parquet part files of `dir`.
std::multiset<int64_t> ReadCommitted(const fs::path& dir) {
  std::multiset<int64_t> ids;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name[0] == '.' || name.find(".inprogress") != std::string::npos) continue;
    auto file = arrow::io::ReadableFile::Open(entry.path().string()).ValueOrDie();
    auto reader =
        parquet::arrow::OpenFile(file, arrow::default_memory_pool()).ValueOrDie();
    auto table = reader->ReadTable().ValueOrDie();
    auto combined = table->CombineChunksToBatch().ValueOrDie();
    CollectIds(combined, &ids);
  }
  return ids;
}

std::multiset<int64_t> Range(int64_t first, int64_t n) {
  std::multiset<int64_t> s;
  for (int64_t i = 0; i < n; ++i) s.insert(first + i);
  return s;
}

std::vector<std::string> InProgress(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.find(".inprogress") != std::string::npos) names.push_back(name);
  }
  return names;
}

// ---- source ----

/// Polls `reader` up to `max_batches` batches (or to the end) into `ids`.
arrow::Result<bool> PollSome(SourceReader* reader, int max_batches,
                             std::multiset<int64_t>* ids) {
  for (int i = 0; i < max_batches; ++i) {
    StreamElement element;
    ARROW_ASSIGN_OR_RAISE(PollResult r, reader->Poll(&element));
    if (r == PollResult::kEndOfInput) return true;
    if (r == PollResult::kElement && element.kind == ElementKind::kBatch) {
      CollectIds(element.batch, ids);
    }
  }
  return false;
}

TEST(FileSourceCheckpoint, ResumesEveryFileAtAnotherParallelism) {
  TempDir tmp;
  const fs::path dir = tmp.path() / "in";
  fs::create_directories(dir);
  // 5 files of 1000 rows, row groups of 300 rows, read in batches of 128.
  for (int f = 0; f < 5; ++f) {
    WriteParquet(dir / ("f" + std::to_string(f) + ".parquet"), f * 1000, 1000, 300);
  }
  FileSourceOptions options;
  options.paths = {dir.string()};
  options.format = "parquet";
  options.batch_size = 128;

  MemorySnapshot snapshot(7);
  std::multiset<int64_t> before;
  for (int i = 0; i < 2; ++i) {
    auto reader = MakeFileSourceReader(options, i, 2).ValueOrDie();
    OperatorContext ctx = Context("file_source#0", i, 2);
    ASSERT_TRUE(reader->Open(&ctx).ok());
    // Instance 0 reads into its second file, instance 1 stops mid first file.
    auto done = PollSome(reader.get(), i == 0 ? 11 : 3, &before);
    ASSERT_TRUE(done.ok()) << done.status();
    ASSERT_FALSE(*done);
    auto writer = snapshot.Writer("file_source#0", i, 2);
    ASSERT_TRUE(reader->SnapshotState(writer.get()).ok());
    // Read on past the checkpoint: lost in the "crash" below, read again after.
    std::multiset<int64_t> discarded;
    ASSERT_TRUE(PollSome(reader.get(), 2, &discarded).ok());
  }
  EXPECT_GT(before.size(), 1000u);  // batches end at row-group boundaries too

  std::multiset<int64_t> after;
  for (int i = 0; i < 3; ++i) {
    auto reader = MakeFileSourceReader(options, i, 3).ValueOrDie();
    auto restore = snapshot.Reader("file_source#0", i, 3);
    OperatorContext ctx = Context("file_source#0", i, 3, restore.get());
    ASSERT_TRUE(reader->Open(&ctx).ok());
    auto done = PollSome(reader.get(), 1000, &after);
    ASSERT_TRUE(done.ok()) << done.status();
    ASSERT_TRUE(*done);
  }
  std::multiset<int64_t> all = before;
  all.insert(after.begin(), after.end());
  EXPECT_EQ(all, Range(0, 5000));  // every row exactly once
}

TEST(FileSourceCheckpoint, ShorterFileThanRestoredPositionIsAnError) {
  TempDir tmp;
  const fs::path file = tmp.path() / "a.parquet";
  WriteParquet(file, 0, 500, 100);
  FileSourceOptions options;
  options.paths = {file.string()};
  options.format = "parquet";
  options.batch_size = 100;
  MemorySnapshot snapshot(1);
  {
    auto reader = MakeFileSourceReader(options, 0, 1).ValueOrDie();
    OperatorContext ctx = Context("src", 0, 1);
    ASSERT_TRUE(reader->Open(&ctx).ok());
    std::multiset<int64_t> ids;
    ASSERT_TRUE(PollSome(reader.get(), 4, &ids).ok());
    auto writer = snapshot.Writer("src", 0, 1);
    ASSERT_TRUE(reader->SnapshotState(writer.get()).ok());
  }
  WriteParquet(file, 0, 200, 100);  // replaced by a shorter file
  auto reader = MakeFileSourceReader(options, 0, 1).ValueOrDie();
  auto restore = snapshot.Reader("src", 0, 1);
  OperatorContext ctx = Context("src", 0, 1, restore.get());
  ASSERT_TRUE(reader->Open(&ctx).ok());
  std::multiset<int64_t> ids;
  auto st = PollSome(reader.get(), 100, &ids).status();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("a.parquet"), std::string::npos) << st;
  EXPECT_NE(st.message().find("fewer than the 400"), std::string::npos) << st;
}

// ---- sink ----

std::unique_ptr<Operator> ParquetSink(const fs::path& dir, int instance) {
  FileSinkOptions options;
  options.path = dir.string();
  options.format = "parquet";
  return MakeFileSink(options, instance).ValueOrDie();
}

TEST(FileSinkCheckpoint, CommitsOnCompletionAndRestoreDropsUncheckpointedFiles) {
  TempDir tmp;
  const fs::path dir = tmp.path() / "out";
  NullCollector out;
  MemorySnapshot snapshot2(2);
  {
    auto sink = ParquetSink(dir, 0);
    OperatorContext ctx = Context("file_sink#1", 0, 1);
    ASSERT_TRUE(sink->Open(&ctx).ok());
    ASSERT_TRUE(sink->ProcessBatch(0, Ids(0, 100), &ctx, &out).ok());
    MemorySnapshot snapshot1(1);
    auto w1 = snapshot1.Writer("file_sink#1", 0, 1);
    ASSERT_TRUE(sink->SnapshotState(w1.get(), &ctx).ok());
    // Pre-committed: finished under its in-progress name, not visible.
    EXPECT_EQ(InProgress(dir), std::vector<std::string>{".part-0-1.parquet.inprogress"});
    EXPECT_FALSE(fs::exists(dir / "part-0-1.parquet"));
    EXPECT_TRUE(ReadCommitted(dir).empty());
    ASSERT_TRUE(sink->NotifyCheckpointComplete(1, &ctx).ok());
    EXPECT_TRUE(fs::exists(dir / "part-0-1.parquet"));
    EXPECT_EQ(ReadCommitted(dir), Range(0, 100));

    ASSERT_TRUE(sink->ProcessBatch(0, Ids(100, 50), &ctx, &out).ok());
    auto w2 = snapshot2.Writer("file_sink#1", 0, 1);
    ASSERT_TRUE(sink->SnapshotState(w2.get(), &ctx).ok());
    // Rows after checkpoint 2, then a crash before 2 completes.
    ASSERT_TRUE(sink->ProcessBatch(0, Ids(1000, 70), &ctx, &out).ok());
  }
  EXPECT_EQ(ReadCommitted(dir), Range(0, 100));
  EXPECT_EQ(InProgress(dir).size(), 2u);

  // Restore from checkpoint 2: its file is committed, the later one dropped.
  auto sink = ParquetSink(dir, 0);
  auto restore = snapshot2.Reader("file_sink#1", 0, 1);
  OperatorContext ctx = Context("file_sink#1", 0, 1, restore.get());
  ASSERT_TRUE(sink->Open(&ctx).ok());
  EXPECT_TRUE(InProgress(dir).empty());
  EXPECT_EQ(ReadCommitted(dir), Range(0, 150));
  ASSERT_TRUE(sink->ProcessBatch(0, Ids(150, 30), &ctx, &out).ok());
  ASSERT_TRUE(sink->Close(&ctx, &out).ok());
  EXPECT_TRUE(fs::exists(dir / "part-0-3.parquet"));
  EXPECT_EQ(ReadCommitted(dir), Range(0, 180));
  EXPECT_TRUE(InProgress(dir).empty());
}

TEST(FileSinkCheckpoint, RestoreAtLowerParallelismCommitsEveryOldInstance) {
  TempDir tmp;
  const fs::path dir = tmp.path() / "out";
  NullCollector out;
  MemorySnapshot snapshot(5);
  for (int i = 0; i < 3; ++i) {
    auto sink = ParquetSink(dir, i);
    OperatorContext ctx = Context("file_sink#1", i, 3);
    ASSERT_TRUE(sink->Open(&ctx).ok());
    ASSERT_TRUE(sink->ProcessBatch(0, Ids(i * 100, 100), &ctx, &out).ok());
    auto w = snapshot.Writer("file_sink#1", i, 3);
    ASSERT_TRUE(sink->SnapshotState(w.get(), &ctx).ok());
    // Instance 2 saw checkpoint 5 complete before the crash.
    if (i == 2) ASSERT_TRUE(sink->NotifyCheckpointComplete(5, &ctx).ok());
    ASSERT_TRUE(sink->ProcessBatch(0, Ids(9000 + i * 10, 5), &ctx, &out).ok());
  }
  EXPECT_EQ(ReadCommitted(dir), Range(200, 100));
  EXPECT_EQ(InProgress(dir).size(), 5u);  // 2 pending + 3 after the checkpoint

  for (int i = 0; i < 2; ++i) {
    auto sink = ParquetSink(dir, i);
    auto restore = snapshot.Reader("file_sink#1", i, 2);
    OperatorContext ctx = Context("file_sink#1", i, 2, restore.get());
    ASSERT_TRUE(sink->Open(&ctx).ok());
    ASSERT_TRUE(sink->Close(&ctx, &out).ok());
  }
  EXPECT_EQ(ReadCommitted(dir), Range(0, 300));
  EXPECT_TRUE(InProgress(dir).empty());
}

TEST(FileSinkCheckpoint, MissingPendingFileIsReported) {
  TempDir tmp;
  const fs::path dir = tmp.path() / "out";
  NullCollector out;
  MemorySnapshot snapshot(3);
  {
    auto sink = ParquetSink(dir, 0);
    OperatorContext ctx = Context("file_sink#1", 0, 1);
    ASSERT_TRUE(sink->Open(&ctx).ok());
    ASSERT_TRUE(sink->ProcessBatch(0, Ids(0, 10), &ctx, &out).ok());
    auto w = snapshot.Writer("file_sink#1", 0, 1);
    ASSERT_TRUE(sink->SnapshotState(w.get(), &ctx).ok());
  }
  fs::remove(dir / ".part-0-1.parquet.inprogress");
  auto sink = ParquetSink(dir, 0);
  auto restore = snapshot.Reader("file_sink#1", 0, 1);
  OperatorContext ctx = Context("file_sink#1", 0, 1, restore.get());
  auto st = sink->Open(&ctx);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find(".part-0-1.parquet.inprogress"), std::string::npos) << st;
  EXPECT_NE(st.message().find("checkpoint 3"), std::string::npos) << st;
}

}  // namespace
}  // namespace sabot
