// The partitioned file sink driven through the operator hooks: the rows of each
// partition land in its directory exactly once (without checkpoints, and
// through a checkpoint, a crash and a restore), success files, escaping, errors.
#include "sabot/connectors/file/partitioned_file_sink.h"

#include <arrow/api.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "sabot/exec/operator.h"
#include "sabot/plan/registry.h"
#include "sabot/state/snapshot.h"

namespace sabot {
namespace {

namespace fs = std::filesystem;

class Collecting : public Collector {
 public:
  arrow::Status Emit(std::shared_ptr<arrow::RecordBatch> b) override {
    rows += b->num_rows();
    return arrow::Status::OK();
  }
  arrow::Status EmitWatermark(int64_t) override { return arrow::Status::OK(); }
  int64_t rows = 0;
};

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "sabot_pfs_test_XXXXXX").string();
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

struct Rec {
  std::string day;
  int64_t hour;
  int64_t id;
  std::string text;
  int64_t ms;
};

std::shared_ptr<arrow::RecordBatch> Batch(const std::vector<Rec>& rows,
                                          bool null_day = false) {
  arrow::StringBuilder day, text;
  arrow::Int64Builder hour, id;
  arrow::TimestampBuilder ts(arrow::timestamp(arrow::TimeUnit::MILLI, "UTC"),
                             arrow::default_memory_pool());
  for (const auto& r : rows) {
    EXPECT_TRUE((null_day ? day.AppendNull() : day.Append(r.day)).ok());
    EXPECT_TRUE(hour.Append(r.hour).ok());
    EXPECT_TRUE(id.Append(r.id).ok());
    EXPECT_TRUE(text.Append(r.text).ok());
    EXPECT_TRUE(ts.Append(r.ms).ok());
  }
  auto schema = arrow::schema(
      {arrow::field("id", arrow::int64()), arrow::field("day", arrow::utf8()),
       arrow::field("text", arrow::utf8()),
       arrow::field("ts", arrow::timestamp(arrow::TimeUnit::MILLI, "UTC")),
       arrow::field("hour", arrow::int64())});
  return arrow::RecordBatch::Make(
      schema, static_cast<int64_t>(rows.size()),
      {id.Finish().ValueOrDie(), day.Finish().ValueOrDie(), text.Finish().ValueOrDie(),
       ts.Finish().ValueOrDie(), hour.Finish().ValueOrDie()});
}

std::vector<Rec> Rows(int64_t first, int64_t n) {
  std::vector<Rec> rows;
  for (int64_t i = first; i < first + n; ++i) {
    rows.push_back(Rec{i % 3 == 0 ? "2026-01-01" : "2026-01:02", i % 2, i,
                       i % 5 == 0 ? "a,b \"q\"" : "x" + std::to_string(i),
                       250 + i * 1000});
  }
  return rows;
}

// The partition directory and the CSV line the sink writes for `r`.
std::pair<std::string, std::string> Expected(const Rec& r) {
  std::string dir =
      "day=" + EscapePartitionValue(r.day) + "/hour=" + std::to_string(r.hour);
  auto quoted = [](const std::string& v) {
    std::string q = "\"";
    for (char c : v) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
  };
  char ts[64];
  const int64_t s = r.ms / 1000;
  std::snprintf(ts, sizeof(ts), "1970-01-01 00:%02lld:%02lld.%03lld",
                static_cast<long long>(s / 60), static_cast<long long>(s % 60),
                static_cast<long long>(r.ms % 1000));
  return {dir, std::to_string(r.id) + "," + quoted(r.text) + "," + quoted(ts)};
}

using Lines = std::multiset<std::pair<std::string, std::string>>;

Lines ExpectedLines(const std::vector<Rec>& rows) {
  Lines out;
  for (const auto& r : rows) out.insert(Expected(r));
  return out;
}

// Every line of the committed part files under `root`, with its directory.
Lines Committed(const fs::path& root) {
  Lines out;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    const std::string name = e.path().filename().string();
    if (!e.is_regular_file() || name.rfind("part-", 0) != 0) continue;
    std::ifstream in(e.path());
    std::string line;
    const std::string dir = fs::relative(e.path().parent_path(), root).string();
    while (std::getline(in, line)) out.insert({dir, line});
  }
  return out;
}

int CountInProgress(const fs::path& root) {
  int n = 0;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (e.path().filename().string().find(".inprogress") != std::string::npos) ++n;
  }
  return n;
}

struct Sink {
  std::unique_ptr<PlanNode> node;
  std::unique_ptr<Operator> op;
  OperatorContext ctx;
  Collecting out;
};

std::unique_ptr<Sink> MakeSink(const std::string& path, int instance, int parallelism,
                               SnapshotReader* restore = nullptr,
                               const std::string& format = "csv") {
  OperatorRegistry registry;
  RegisterPartitionedFileSink(&registry);
  auto s = std::make_unique<Sink>();
  auto o = std::make_shared<PartitionedFileSinkOptions>();
  o->path = path;
  o->format = format;
  o->partition_by = {"day", "hour"};
  s->node = std::make_unique<PlanNode>();
  s->node->kind = "partitioned_file_sink";
  s->node->name = "partitioned_file_sink#4";
  s->node->options = o;
  s->op = registry.MakeOperator(*s->node, instance, parallelism).ValueOrDie();
  s->ctx.operator_name = s->node->name;
  s->ctx.instance_index = instance;
  s->ctx.parallelism = parallelism;
  s->ctx.restore = restore;
  return s;
}

TEST(PartitionedFileSinkTest, EscapesAsFlink) {
  EXPECT_EQ(EscapePartitionValue("10:05"), "10%3A05");
  EXPECT_EQ(EscapePartitionValue("a/b=c%d"), "a%2Fb%3Dc%25d");
  EXPECT_EQ(EscapePartitionValue("plain-1 x"), "plain-1 x");
  EXPECT_EQ(EscapePartitionValue(std::string("\x01", 1)), "%01");
}

TEST(PartitionedFileSinkTest, WritesEachPartitionWithoutCheckpoints) {
  TempDir dir;
  auto sink = MakeSink(dir.path().string(), 0, 1);
  ASSERT_TRUE(sink->op->Open(&sink->ctx).ok());
  std::vector<Rec> all;
  for (int64_t b = 0; b < 4; ++b) {
    auto rows = Rows(b * 30, 30);
    all.insert(all.end(), rows.begin(), rows.end());
    ASSERT_TRUE(sink->op->ProcessBatch(0, Batch(rows), &sink->ctx, &sink->out).ok());
  }
  EXPECT_EQ(Committed(dir.path()), Lines{});  // nothing visible before the end
  ASSERT_TRUE(sink->op->Close(&sink->ctx, &sink->out).ok());
  EXPECT_EQ(sink->out.rows, 120);
  EXPECT_EQ(Committed(dir.path()), ExpectedLines(all));
  EXPECT_EQ(CountInProgress(dir.path()), 0);
  int partitions = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir.path())) {
    if (e.path().filename() == "hour=0" || e.path().filename() == "hour=1") {
      ++partitions;
      EXPECT_TRUE(fs::exists(e.path() / kSuccessFileName)) << e.path();
      EXPECT_TRUE(fs::exists(e.path() / "part-0-0.csv") ||
                  fs::exists(e.path() / "part-0-1.csv") ||
                  fs::exists(e.path() / "part-0-2.csv") ||
                  fs::exists(e.path() / "part-0-3.csv"))
          << e.path();
    }
  }
  EXPECT_EQ(partitions, 4);
  EXPECT_TRUE(fs::exists(dir.path() / "day=2026-01%3A02" / "hour=1"));
}

TEST(PartitionedFileSinkTest, ExactlyOnceThroughCheckpointCrashAndRestore) {
  TempDir dir;
  const std::string path = dir.path().string();
  MemorySnapshot ckpt1(1), ckpt2(2);
  std::vector<Rec> committed_rows;
  {
    auto sink = MakeSink(path, 0, 1);
    ASSERT_TRUE(sink->op->Open(&sink->ctx).ok());
    auto a = Rows(0, 40), b = Rows(40, 40), lost = Rows(80, 40);
    ASSERT_TRUE(sink->op->ProcessBatch(0, Batch(a), &sink->ctx, &sink->out).ok());
    auto w1 = ckpt1.Writer(sink->node->name, 0, 1);
    ASSERT_TRUE(sink->op->SnapshotState(w1.get(), &sink->ctx).ok());
    ASSERT_TRUE(sink->op->ProcessBatch(0, Batch(b), &sink->ctx, &sink->out).ok());
    auto w2 = ckpt2.Writer(sink->node->name, 0, 1);
    ASSERT_TRUE(sink->op->SnapshotState(w2.get(), &sink->ctx).ok());
    ASSERT_TRUE(sink->op->NotifyCheckpointComplete(1, &sink->ctx).ok());
    EXPECT_EQ(Committed(dir.path()), ExpectedLines(a));
    // Written after checkpoint 2, then the job dies (no Close).
    ASSERT_TRUE(sink->op->ProcessBatch(0, Batch(lost), &sink->ctx, &sink->out).ok());
    committed_rows = a;
    committed_rows.insert(committed_rows.end(), b.begin(), b.end());
  }
  EXPECT_GT(CountInProgress(dir.path()), 0);
  // Checkpoint 2 completed before the crash was noticed: restore two instances
  // from it (rescaled 1 -> 2); the lost rows are produced again.
  std::vector<Rec> again = Rows(80, 40);
  std::vector<std::unique_ptr<Sink>> sinks;
  std::vector<std::unique_ptr<SnapshotReader>> readers;
  for (int i = 0; i < 2; ++i) {
    readers.push_back(ckpt2.Reader("partitioned_file_sink#4", i, 2));
    sinks.push_back(MakeSink(path, i, 2, readers.back().get()));
    ASSERT_TRUE(sinks.back()->op->Open(&sinks.back()->ctx).ok());
    sinks.back()->ctx.restore = nullptr;
  }
  EXPECT_EQ(CountInProgress(dir.path()), 0);
  EXPECT_EQ(Committed(dir.path()), ExpectedLines(committed_rows));
  for (int i = 0; i < 2; ++i) {
    std::vector<Rec> half(again.begin() + i * 20, again.begin() + (i + 1) * 20);
    ASSERT_TRUE(
        sinks[i]->op->ProcessBatch(0, Batch(half), &sinks[i]->ctx, &sinks[i]->out).ok());
    ASSERT_TRUE(sinks[i]->op->Close(&sinks[i]->ctx, &sinks[i]->out).ok());
  }
  committed_rows.insert(committed_rows.end(), again.begin(), again.end());
  EXPECT_EQ(Committed(dir.path()), ExpectedLines(committed_rows));
  // File names never repeat across the restore.
  std::set<std::string> names;
  int files = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir.path())) {
    const std::string name = e.path().filename().string();
    if (name.rfind("part-", 0) == 0) {
      ++files;
      names.insert(fs::relative(e.path(), dir.path()).string());
    }
  }
  EXPECT_EQ(names.size(), static_cast<size_t>(files));
}

TEST(PartitionedFileSinkTest, ParquetKeepsColumns) {
  TempDir dir;
  auto sink = MakeSink(dir.path().string(), 0, 1, nullptr, "parquet");
  ASSERT_TRUE(sink->op->Open(&sink->ctx).ok());
  ASSERT_TRUE(sink->op->ProcessBatch(0, Batch(Rows(0, 12)), &sink->ctx, &sink->out).ok());
  ASSERT_TRUE(sink->op->Close(&sink->ctx, &sink->out).ok());
  int files = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir.path())) {
    if (e.path().extension() == ".parquet") ++files;
  }
  EXPECT_EQ(files, 4);
}

TEST(PartitionedFileSinkTest, NullPartitionValueNamesSinkAndColumn) {
  TempDir dir;
  auto sink = MakeSink(dir.path().string(), 0, 1);
  ASSERT_TRUE(sink->op->Open(&sink->ctx).ok());
  auto st = sink->op->ProcessBatch(0, Batch(Rows(0, 3), true), &sink->ctx, &sink->out);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("partitioned_file_sink#4"), std::string::npos) << st;
  EXPECT_NE(st.message().find("'day'"), std::string::npos) << st;
}

TEST(PartitionedFileSinkTest, UnwritableDirectoryNamesIt) {
  TempDir dir;
  const fs::path blocker = dir.path() / "a_file";
  std::ofstream(blocker) << "x";
  auto sink = MakeSink((blocker / "out").string(), 0, 1);
  auto st = sink->op->Open(&sink->ctx);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("partitioned_file_sink#4"), std::string::npos) << st;
  EXPECT_NE(st.message().find((blocker / "out").string()), std::string::npos) << st;
}

}  // namespace
}  // namespace sabot
