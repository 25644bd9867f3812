// Checkpoints in running jobs: a keyed count (a stateful test operator that
// writes through WriteKeyed) on the Nexmark generator, checkpointed, stopped,
// and restored at another parallelism; results against an uninterrupted run and
// a reference computed from the generator. Also failures, savepoints,
// unaligned checkpoints and notifications.
#include <arrow/array/builder_primitive.h>
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "sabot/api/datastream.h"
#include "sabot/checkpoint/coordinator.h"
#include "sabot/checkpoint/storage.h"
#include "sabot/connectors/nexmark/nexmark_source.h"
#include "sabot/plan/registry.h"

namespace sabot {
namespace {

namespace fs = std::filesystem;
using checkpoint::LoadMetadata;

#define ASSERT_OK(expr)                                       \
  do {                                                        \
    auto _st = (expr);                                        \
    ASSERT_TRUE(_st.ok()) << #expr << ": " << _st.ToString(); \
  } while (false)

class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    path_ = (fs::temp_directory_path() / ("sabot_ckpt_job_" + std::to_string(::getpid()) +
                                          "_" + std::to_string(counter++)))
                .string();
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

bool WaitUntil(const std::function<bool()>& condition, int64_t timeout_ms = 60000) {
  auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

// --- the stateful test operator ---------------------------------------------------

struct KeyedCountOptions : NodeOptions {
  std::string key = "auction";
  /// Slows the operator down (to build up backpressure in unaligned tests).
  int64_t sleep_us_per_batch = 0;
  /// Also hand a small immutable file per checkpoint to AddFiles (shared).
  bool with_files = false;
  std::string files_dir;
  /// While closed, ProcessBatch waits (holds checkpoints in flight).
  std::shared_ptr<std::atomic<bool>> gate_open =
      std::make_shared<std::atomic<bool>>(true);
  struct Log {
    std::mutex mutex;
    std::vector<int64_t> notified;
    std::vector<int64_t> restored_file_ids;
  };
  std::shared_ptr<Log> log = std::make_shared<Log>();
  std::string ToString() const override { return "test_keyed_count(" + key + ")"; }
};

class KeyedCount : public Operator {
 public:
  KeyedCount(const KeyedCountOptions& options, int instance)
      : options_(options), instance_(instance) {}

  arrow::Status Open(OperatorContext* ctx) override {
    if (ctx->key_groups.empty()) return arrow::Status::Invalid("no key groups set");
    if (ctx->state == nullptr || ctx->job_name.empty()) {
      return arrow::Status::Invalid("state config or job name missing");
    }
    if (ctx->restore == nullptr) return arrow::Status::OK();
    if (ctx->restore->key_groups().first != ctx->key_groups.first) {
      return arrow::Status::Invalid("reader and context disagree on key groups");
    }
    ARROW_ASSIGN_OR_RAISE(auto batches, ctx->restore->ReadKeyed("counts"));
    for (const auto& b : batches) {
      auto keys =
          std::static_pointer_cast<arrow::Int64Array>(b->GetColumnByName(options_.key));
      auto counts =
          std::static_pointer_cast<arrow::Int64Array>(b->GetColumnByName("count"));
      for (int64_t i = 0; i < b->num_rows(); ++i) {
        if (counts_.count(keys->Value(i))) {
          return arrow::Status::Invalid("key restored twice: ", keys->Value(i));
        }
        counts_[keys->Value(i)] = counts->Value(i);
      }
    }
    if (options_.with_files) {
      ARROW_ASSIGN_OR_RAISE(
          auto sets, ctx->restore->ReadFiles("blob", options_.files_dir + "/restore-" +
                                                         std::to_string(instance_)));
      for (const auto& set : sets) {
        for (const auto& e : fs::directory_iterator(set.dir)) {
          std::ifstream f(e.path());
          int64_t id = -1;
          f >> id;
          std::lock_guard<std::mutex> lock(options_.log->mutex);
          options_.log->restored_file_ids.push_back(id);
        }
      }
    }
    return arrow::Status::OK();
  }

  arrow::Status ProcessBatch(int, const std::shared_ptr<arrow::RecordBatch>& batch,
                             OperatorContext*, Collector*) override {
    auto keys =
        std::static_pointer_cast<arrow::Int64Array>(batch->GetColumnByName(options_.key));
    for (int64_t i = 0; i < keys->length(); ++i) ++counts_[keys->Value(i)];
    while (!options_.gate_open->load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (options_.sleep_us_per_batch > 0) {
      std::this_thread::sleep_for(std::chrono::microseconds(options_.sleep_us_per_batch));
    }
    return arrow::Status::OK();
  }

  arrow::Status SnapshotState(SnapshotWriter* writer, OperatorContext* ctx) override {
    ARROW_ASSIGN_OR_RAISE(auto batch, ToBatch());
    ARROW_RETURN_NOT_OK(writer->WriteKeyed("counts", batch, {options_.key}));
    if (options_.with_files) {
      const std::string dir = options_.files_dir + "/local-" + std::to_string(instance_);
      fs::create_directories(dir);
      const std::string name = "snap-" + std::to_string(writer->checkpoint_id()) + ".txt";
      std::ofstream(dir + "/" + name) << writer->checkpoint_id();
      ARROW_RETURN_NOT_OK(writer->AddFiles("blob", dir, {}, {name}));
    }
    return arrow::Status::OK();
  }

  arrow::Status NotifyCheckpointComplete(int64_t id, OperatorContext*) override {
    std::lock_guard<std::mutex> lock(options_.log->mutex);
    options_.log->notified.push_back(id);
    return arrow::Status::OK();
  }

  arrow::Status Close(OperatorContext*, Collector* out) override {
    ARROW_ASSIGN_OR_RAISE(auto batch, ToBatch());
    return out->Emit(batch);
  }

 private:
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> ToBatch() const {
    arrow::Int64Builder keys, counts;
    for (const auto& [k, c] : counts_) {
      ARROW_RETURN_NOT_OK(keys.Append(k));
      ARROW_RETURN_NOT_OK(counts.Append(c));
    }
    std::shared_ptr<arrow::Array> k, c;
    ARROW_RETURN_NOT_OK(keys.Finish(&k));
    ARROW_RETURN_NOT_OK(counts.Finish(&c));
    auto schema = arrow::schema({arrow::field(options_.key, arrow::int64()),
                                 arrow::field("count", arrow::int64())});
    return arrow::RecordBatch::Make(schema, k->length(), {k, c});
  }

  const KeyedCountOptions& options_;
  int instance_;
  std::map<int64_t, int64_t> counts_;
};

void RegisterKeyedCount() {
  (void)OperatorRegistry::Global()->AddOperator(
      "test_keyed_count",
      [](const PlanNode& node, int i, int) -> arrow::Result<std::unique_ptr<Operator>> {
        return std::make_unique<KeyedCount>(node.options_as<KeyedCountOptions>(), i);
      });
}

// --- jobs and references ----------------------------------------------------------

nexmark::NexmarkConfig BidConfig(int64_t events, int64_t rate_limit, uint64_t seed = 42) {
  nexmark::NexmarkConfig c;
  c.view = "bid";
  c.num_events = events;
  c.rate_limit = rate_limit;
  c.batch_size = 1000;
  c.seed = seed;
  return c;
}

std::shared_ptr<CollectBuffer> BuildCountJob(
    StreamEnvironment* env, int64_t events, int source_parallelism, int64_t rate_limit,
    std::shared_ptr<KeyedCountOptions> count = std::make_shared<KeyedCountOptions>()) {
  RegisterKeyedCount();
  auto source = env->FromSource(
      "nexmark_source",
      std::make_shared<nexmark::NexmarkSourceOptions>(BidConfig(events, rate_limit)),
      source_parallelism);
  return source.KeyBy({"auction"}).Apply("test_keyed_count", count).Collect();
}

std::map<int64_t, int64_t> Counts(const CollectBuffer& buffer) {
  std::map<int64_t, int64_t> out;
  for (const auto& b : buffer.batches()) {
    auto keys =
        std::static_pointer_cast<arrow::Int64Array>(b->GetColumnByName("auction"));
    auto counts =
        std::static_pointer_cast<arrow::Int64Array>(b->GetColumnByName("count"));
    for (int64_t i = 0; i < b->num_rows(); ++i) {
      EXPECT_EQ(out.count(keys->Value(i)), 0u) << "key emitted twice: " << keys->Value(i);
      out[keys->Value(i)] += counts->Value(i);
    }
  }
  return out;
}

// Straight from the generator, split by split: what the job must count.
std::map<int64_t, int64_t> ReferenceCounts(int64_t events, int num_splits,
                                           uint64_t seed = 42) {
  std::map<int64_t, int64_t> out;
  for (int s = 0; s < num_splits; ++s) {
    auto gen = nexmark::NexmarkGenerator::Make(BidConfig(events, 0, seed), s, num_splits)
                   .ValueOrDie();
    for (;;) {
      auto batch = gen->NextBatch().ValueOrDie();
      if (!batch) break;
      auto keys =
          std::static_pointer_cast<arrow::Int64Array>(batch->GetColumnByName("auction"));
      for (int64_t i = 0; i < keys->length(); ++i) ++out[keys->Value(i)];
    }
  }
  return out;
}

int64_t Total(const std::map<int64_t, int64_t>& counts) {
  int64_t n = 0;
  for (const auto& [k, c] : counts) n += c;
  return n;
}

JobOptions Options(int parallelism, const std::string& dir) {
  JobOptions o;
  o.parallelism = parallelism;
  o.num_threads = 2;
  o.job_name = "checkpoint-test";
  o.checkpoint.directory = dir;
  return o;
}

// --- tests
// ------------------------------------------------------------------------------

class RescaleTest : public ::testing::TestWithParam<std::pair<int, int>> {};

// Run with periodic checkpoints, cancel after checkpoint 3 completed, restore
// from the latest at another parallelism: the final counts equal an
// uninterrupted run and the generator reference.
TEST_P(RescaleTest, RestoreAtAnotherParallelismMatchesUninterruptedRun) {
  const auto [p1, p2] = GetParam();
  const int64_t events = 300'000;
  TempDir tmp;
  const auto reference = ReferenceCounts(events, p1);

  JobOptions first = Options(p1, tmp / "ckpt");
  first.checkpoint.interval_ms = 30;
  first.checkpoint.retain = 2;
  auto env1 = StreamEnvironment::Make(first);
  BuildCountJob(env1.get(), events, p1, /*rate_limit=*/30'000);
  auto job1 = Job::Make(*env1->plan(), first).ValueOrDie();
  ASSERT_OK(job1->Start());
  ASSERT_TRUE(job1->AwaitCheckpoints(3, 60000))
      << job1->CheckpointStatistics().last_failure;
  job1->Cancel();
  ASSERT_OK(job1->Wait());
  const auto stats1 = job1->CheckpointStatistics();
  EXPECT_GE(stats1.completed, 3);
  EXPECT_EQ(stats1.failed, 0);
  // Retain 2: only the last two completed checkpoints are left.
  int dirs = 0;
  for (const auto& c : checkpoint::ListCheckpoints(tmp / "ckpt")) dirs += c.has_metadata;
  EXPECT_EQ(dirs, 2);

  JobOptions second = Options(p2, tmp / "ckpt");
  second.checkpoint.restore_from = "latest";
  auto env2 = StreamEnvironment::Make(second);
  auto out2 = BuildCountJob(env2.get(), events, p2, 0);
  auto job2 = Job::Make(*env2->plan(), second).ValueOrDie();
  ASSERT_OK(job2->Start());
  ASSERT_OK(job2->Wait());
  const auto stats2 = job2->CheckpointStatistics();
  EXPECT_EQ(stats2.restored_id, stats1.last_completed_id);
  // The restored run read only what the checkpoint had not covered.
  EXPECT_LT(job2->Metrics().operators[0].rows_out, Total(reference));
  EXPECT_EQ(Counts(*out2), reference);

  JobOptions straight = Options(p1, "");
  auto env3 = StreamEnvironment::Make(straight);
  auto out3 = BuildCountJob(env3.get(), events, p1, 0);
  ASSERT_OK(env3->Execute().status());
  EXPECT_EQ(Counts(*out3), reference);
}

INSTANTIATE_TEST_SUITE_P(CheckpointJobTest, RescaleTest,
                         ::testing::Values(std::make_pair(1, 3), std::make_pair(3, 2)));

TEST(CheckpointJobTest, MetadataNamesOperatorsKeyGroupsAndSourcePositions) {
  TempDir tmp;
  JobOptions o = Options(2, tmp / "ckpt");
  auto env = StreamEnvironment::Make(o);
  auto count = std::make_shared<KeyedCountOptions>();
  BuildCountJob(env.get(), 1'000'000, 2, 20'000, count);
  auto job = Job::Make(*env->plan(), o).ValueOrDie();
  ASSERT_OK(job->Start());
  auto id = job->TriggerCheckpoint();
  ASSERT_OK(id.status());
  EXPECT_EQ(*id, 1);
  ASSERT_TRUE(job->AwaitCheckpoints(1, 60000));
  // The operators learn of the completion on their own thread.
  ASSERT_TRUE(WaitUntil([&] {
    std::lock_guard<std::mutex> lock(count->log->mutex);
    return count->log->notified.size() >= 2;  // both instances
  }));
  job->Cancel();
  ASSERT_OK(job->Wait());
  auto m = LoadMetadata(tmp / "ckpt/chk-1").ValueOrDie();
  EXPECT_EQ(m.kind, "checkpoint");
  EXPECT_EQ(m.job_name, "checkpoint-test");
  EXPECT_EQ(m.max_parallelism, 128);
  ASSERT_TRUE(m.operators.count("nexmark_source#0"));
  ASSERT_TRUE(m.operators.count("test_keyed_count#1"));
  EXPECT_FALSE(m.operators.count("collect_sink#2"));  // stateless: not listed
  const auto& counts = m.operators["test_keyed_count#1"];
  ASSERT_EQ(counts.instances.size(), 2u);
  EXPECT_EQ(counts.instances[0].key_groups.first, 0);
  EXPECT_EQ(counts.instances[0].key_groups.last, 63);
  EXPECT_EQ(counts.instances[1].key_groups.first, 64);
  EXPECT_TRUE(counts.instances[1].keyed.count("counts"));
  const auto& source = m.operators["nexmark_source#0"];
  ASSERT_EQ(source.instances.size(), 2u);
  ASSERT_TRUE(source.instances[1].operator_state.count("splits"));
  const std::string text = [&] {
    std::ifstream f(tmp / "ckpt/chk-1/_metadata");
    return std::string(std::istreambuf_iterator<char>(f), {});
  }();
  EXPECT_NE(
      text.find(
          "\"positions\": {\"splits\": [{\"split\": 1, \"num_splits\": 2, \"events\": "),
      std::string::npos)
      << text;
  EXPECT_TRUE(checkpoint::VerifyFiles(m).ok());
}

TEST(CheckpointJobTest, OneCheckpointInFlightPeriodicTriggersAreSkipped) {
  TempDir tmp;
  JobOptions o = Options(1, tmp / "ckpt");
  o.checkpoint.interval_ms = 5;
  auto env = StreamEnvironment::Make(o);
  auto count = std::make_shared<KeyedCountOptions>();
  count->gate_open->store(false);  // the count holds every barrier
  BuildCountJob(env.get(), 1'000'000, 1, 20'000, count);
  auto job = Job::Make(*env->plan(), o).ValueOrDie();
  ASSERT_OK(job->Start());
  ASSERT_TRUE(WaitUntil([&] { return job->CheckpointStatistics().skipped >= 3; }));
  // (A checkpoint taken before the first batch reached the count may complete.)
  auto stats = job->CheckpointStatistics();
  ASSERT_GT(stats.in_progress_id, 0);
  EXPECT_EQ(stats.completed, stats.in_progress_id - 1);
  auto again = job->TriggerCheckpoint();
  ASSERT_FALSE(again.ok());
  EXPECT_NE(
      again.status().message().find("checkpoint " + std::to_string(stats.in_progress_id) +
                                    " is still in progress"),
      std::string::npos)
      << again.status().ToString();
  count->gate_open->store(true);
  ASSERT_TRUE(job->AwaitCheckpoints(stats.completed + 1, 60000));
  EXPECT_GE(job->CheckpointStatistics().last_completed_id, stats.in_progress_id);
  job->Cancel();
  ASSERT_OK(job->Wait());
}

TEST(CheckpointJobTest, FailingCheckpointsAreCountedThenFailTheJob) {
  TempDir tmp;
  // The checkpoint directory is a regular file: every checkpoint fails.
  std::ofstream(tmp / "blocker") << "x";
  JobOptions o = Options(1, tmp / "blocker");
  o.checkpoint.interval_ms = 10;
  o.checkpoint.tolerable_failures = 2;
  auto env = StreamEnvironment::Make(o);
  BuildCountJob(env.get(), 10'000'000, 1, 50'000);
  auto job = Job::Make(*env->plan(), o).ValueOrDie();
  ASSERT_OK(job->Start());
  auto st = job->Wait();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("3 consecutive failed checkpoints"), std::string::npos)
      << st.ToString();
  EXPECT_NE(st.message().find(tmp / "blocker"), std::string::npos) << st.ToString();
  auto stats = job->CheckpointStatistics();
  // Two failures were tolerated while the job kept running; the third failed it.
  EXPECT_EQ(stats.failed, 3);
  EXPECT_EQ(stats.completed, 0);
  EXPECT_NE(stats.last_failure.find("Not a directory"), std::string::npos)
      << stats.last_failure;
  EXPECT_EQ(job->Metrics().failed_checkpoints, 3);
}

TEST(CheckpointJobTest, JobKeepsRunningAfterAFailureAndRecovers) {
  TempDir tmp;
  std::ofstream(tmp / "ckpt") << "in the way";
  JobOptions o = Options(1, tmp / "ckpt");
  o.checkpoint.tolerable_failures = 1;
  auto env = StreamEnvironment::Make(o);
  auto out = BuildCountJob(env.get(), 200'000, 1, 100'000);
  auto job = Job::Make(*env->plan(), o).ValueOrDie();
  ASSERT_OK(job->Start());
  ASSERT_OK(job->TriggerCheckpoint().status());
  ASSERT_TRUE(WaitUntil([&] { return job->CheckpointStatistics().failed == 1; }));
  EXPECT_EQ(job->CheckpointStatistics().consecutive_failures, 1);
  EXPECT_FALSE(job->done());
  fs::remove(tmp / "ckpt");
  ASSERT_OK(job->TriggerCheckpoint().status());
  ASSERT_TRUE(job->AwaitCheckpoints(1, 60000));
  auto stats = job->CheckpointStatistics();
  EXPECT_EQ(stats.consecutive_failures, 0);
  EXPECT_EQ(stats.last_completed_id, 2);
  EXPECT_NE(stats.last_failure.find(tmp / "ckpt"), std::string::npos)
      << stats.last_failure;
  // The job's output is complete: nothing was lost to the failed checkpoint.
  ASSERT_OK(job->Wait());
  EXPECT_EQ(Counts(*out), ReferenceCounts(200'000, 1));
}

// A full disk: files may not grow past 1 KiB (RLIMIT_FSIZE, with SIGXFSZ
// ignored a write fails with EFBIG as it would with ENOSPC). The checkpoint
// fails with the I/O error, the job keeps running and completes the next one
// once there is room again.
TEST(CheckpointJobTest, FullDiskFailsTheCheckpointNotTheJob) {
  TempDir tmp;
  JobOptions o = Options(1, tmp / "ckpt");
  auto env = StreamEnvironment::Make(o);
  auto out = BuildCountJob(env.get(), 300'000, 1, 100'000);
  auto job = Job::Make(*env->plan(), o).ValueOrDie();
  ASSERT_OK(job->Start());
  ASSERT_TRUE(WaitUntil([&] { return job->Metrics().operators[1].rows_in > 20'000; }));
  struct rlimit old_limit;
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old_limit;
  small.rlim_cur = 1024;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  ASSERT_OK(job->TriggerCheckpoint().status());
  const bool failed = WaitUntil([&] { return job->CheckpointStatistics().failed == 1; });
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);
  ASSERT_TRUE(failed);
  auto stats = job->CheckpointStatistics();
  EXPECT_NE(stats.last_failure.find("File too large"), std::string::npos)
      << stats.last_failure;
  EXPECT_NE(stats.last_failure.find(tmp / "ckpt/chk-1"), std::string::npos)
      << stats.last_failure;
  // The partial checkpoint is removed (by the I/O thread, after the count).
  EXPECT_TRUE(WaitUntil([&] { return !fs::exists(tmp / "ckpt/chk-1"); }));
  ASSERT_OK(job->TriggerCheckpoint().status());
  ASSERT_TRUE(job->AwaitCheckpoints(1, 60000));
  ASSERT_OK(job->Wait());
  EXPECT_EQ(Counts(*out), ReferenceCounts(300'000, 1));
}

TEST(CheckpointJobTest, SavepointsAreSelfContainedAndStopWithSavepointResumesExactly) {
  TempDir tmp;
  const int64_t events = 400'000;
  const auto reference = ReferenceCounts(events, 2);
  JobOptions o = Options(2, tmp / "ckpt");
  o.checkpoint.interval_ms = 20;
  auto env = StreamEnvironment::Make(o);
  auto count = std::make_shared<KeyedCountOptions>();
  count->with_files = true;
  count->files_dir = tmp / "files";
  BuildCountJob(env.get(), events, 2, 20'000, count);
  auto job = Job::Make(*env->plan(), o).ValueOrDie();
  ASSERT_OK(job->Start());
  ASSERT_TRUE(job->AwaitCheckpoints(2, 60000));
  auto sp1 = job->TriggerSavepoint(tmp / "sp1");
  ASSERT_OK(sp1.status());
  auto m1 = LoadMetadata(*sp1).ValueOrDie();
  EXPECT_EQ(m1.kind, "savepoint");
  ASSERT_OK(checkpoint::VerifyFiles(m1));
  bool any_shared = false;
  for (const auto& f : m1.AllFiles()) {
    EXPECT_NE(f.path.rfind("..", 0), 0u) << f.path << " points outside the savepoint";
    any_shared |= f.path.rfind("shared/", 0) == 0;
  }
  EXPECT_TRUE(any_shared);
  // Checkpoints reference their shared files in <dir>/shared.
  auto latest =
      checkpoint::ResolveRestore("latest", tmp / "ckpt", new std::vector<std::string>())
          .ValueOrDie();
  ASSERT_TRUE(latest.has_value());
  bool references_shared = false;
  for (const auto& f : latest->AllFiles())
    references_shared |= f.path.rfind("../shared/", 0) == 0;
  EXPECT_TRUE(references_shared);
  // A savepoint path must be new.
  EXPECT_FALSE(job->TriggerSavepoint(*sp1).ok());

  auto sp2 = job->StopWithSavepoint(tmp / "sp2");
  ASSERT_OK(sp2.status());
  ASSERT_OK(job->Wait());
  EXPECT_EQ(job->CheckpointStatistics().savepoints, 2);
  // The savepoint is independent of the checkpoint directory.
  fs::remove_all(tmp / "ckpt");

  JobOptions restore = Options(1, "");
  restore.checkpoint.restore_from = *sp2;
  auto env2 = StreamEnvironment::Make(restore);
  auto count2 = std::make_shared<KeyedCountOptions>();
  count2->with_files = true;
  count2->files_dir = tmp / "files2";
  auto out = BuildCountJob(env2.get(), events, 1, 0, count2);
  ASSERT_OK(env2->Execute().status());
  EXPECT_EQ(Counts(*out), reference);
  // The shared files came back (one per old instance, of the savepoint's id).
  const int64_t sp_id = LoadMetadata(*sp2).ValueOrDie().checkpoint_id;
  EXPECT_EQ(count2->log->restored_file_ids, (std::vector<int64_t>{sp_id, sp_id}));
}

TEST(CheckpointJobTest, StateOfAMissingOperatorIsRefusedUnlessAllowed) {
  TempDir tmp;
  JobOptions o = Options(1, tmp / "ckpt");
  auto env = StreamEnvironment::Make(o);
  BuildCountJob(env.get(), 1'000'000, 1, 20'000);
  auto job = Job::Make(*env->plan(), o).ValueOrDie();
  ASSERT_OK(job->Start());
  ASSERT_OK(job->TriggerCheckpoint().status());
  ASSERT_TRUE(job->AwaitCheckpoints(1, 60000));
  job->Cancel();
  ASSERT_OK(job->Wait());

  // Same source, no count operator.
  JobOptions r = Options(1, tmp / "ckpt");
  r.checkpoint.restore_from = "latest";
  auto env2 = StreamEnvironment::Make(r);
  env2->FromSource(
          "nexmark_source",
          std::make_shared<nexmark::NexmarkSourceOptions>(BidConfig(1'000'000, 0)), 1)
      .Collect();
  auto refused = Job::Make(*env2->plan(), r);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("'test_keyed_count#1'"), std::string::npos)
      << refused.status().ToString();
  EXPECT_NE(refused.status().message().find("allow_non_restored_state"),
            std::string::npos);
  r.checkpoint.allow_non_restored_state = true;
  ASSERT_OK(Job::Make(*env2->plan(), r).status());

  // An explicit uid keeps state across a renumbered plan.
  JobOptions u = Options(1, tmp / "ckpt");
  u.checkpoint.restore_from = "latest";
  auto env3 = StreamEnvironment::Make(u);
  auto out = BuildCountJob(env3.get(), 1'000'000, 1, 0);
  env3->plan()->mutable_node(1)->uid = "renamed";
  auto renamed = Job::Make(*env3->plan(), u);
  ASSERT_FALSE(renamed.ok());
  env3->plan()->mutable_node(1)->uid = "test_keyed_count#1";
  ASSERT_OK(Job::Make(*env3->plan(), u).status());
  env3->plan()->mutable_node(0)->uid = "test_keyed_count#1";
  auto duplicate = Job::Make(*env3->plan(), u);
  ASSERT_FALSE(duplicate.ok());
  EXPECT_NE(duplicate.status().message().find("used twice"), std::string::npos);
}

TEST(CheckpointJobTest, MaxParallelismMustMatchOnRestore) {
  TempDir tmp;
  JobOptions o = Options(1, tmp / "ckpt");
  auto env = StreamEnvironment::Make(o);
  BuildCountJob(env.get(), 1'000'000, 1, 20'000);
  auto job = Job::Make(*env->plan(), o).ValueOrDie();
  ASSERT_OK(job->Start());
  ASSERT_OK(job->TriggerCheckpoint().status());
  ASSERT_TRUE(job->AwaitCheckpoints(1, 60000));
  job->Cancel();
  ASSERT_OK(job->Wait());
  JobOptions r = Options(1, tmp / "ckpt");
  r.max_parallelism = 64;
  r.checkpoint.restore_from = tmp / "ckpt/chk-1";
  auto env2 = StreamEnvironment::Make(r);
  BuildCountJob(env2.get(), 1'000'000, 1, 0);
  auto refused = Job::Make(*env2->plan(), r);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("max_parallelism 128"), std::string::npos);
  // Checkpoint ids continue after the restored one.
  r.max_parallelism = 128;
  auto env3 = StreamEnvironment::Make(r);
  BuildCountJob(env3.get(), 1'000'000, 1, 20'000);
  auto job3 = Job::Make(*env3->plan(), r).ValueOrDie();
  ASSERT_OK(job3->Start());
  auto next = job3->TriggerCheckpoint();
  ASSERT_OK(next.status());
  EXPECT_EQ(*next, 2);
  ASSERT_TRUE(job3->AwaitCheckpoints(1, 60000));
  job3->Cancel();
  ASSERT_OK(job3->Wait());
}

// Unaligned: a fast source and a slow one meet in a union whose consumer is
// slow; the barrier of the fast (full) channel arrives late, so the batches in
// front of it are recorded as channel state, and replayed on restore.
TEST(CheckpointJobTest, UnalignedCheckpointRecordsAndReplaysChannelState) {
  RegisterKeyedCount();
  TempDir tmp;
  const int64_t fast_events = 400'000, slow_events = 100'000;
  auto build = [&](StreamEnvironment* env, int64_t slow_rate,
                   std::shared_ptr<KeyedCountOptions> count) {
    auto fast = env->FromSource(
        "nexmark_source",
        std::make_shared<nexmark::NexmarkSourceOptions>(BidConfig(fast_events, 0, 1)), 1);
    auto slow = env->FromSource("nexmark_source",
                                std::make_shared<nexmark::NexmarkSourceOptions>(
                                    BidConfig(slow_events, slow_rate, 2)),
                                1);
    return fast.Union({slow})
        .KeyBy({"auction"})
        .Apply("test_keyed_count", count)
        .Collect();
  };
  auto reference = ReferenceCounts(fast_events, 1, 1);
  for (const auto& [k, c] : ReferenceCounts(slow_events, 1, 2)) reference[k] += c;

  JobOptions o = Options(1, tmp / "ckpt");
  o.checkpoint.unaligned = true;
  o.channel_max_rows = 3000;
  auto env = StreamEnvironment::Make(o);
  auto slow_count = std::make_shared<KeyedCountOptions>();
  slow_count->sleep_us_per_batch = 2000;
  build(env.get(), 2'000, slow_count);
  auto job = Job::Make(*env->plan(), o).ValueOrDie();
  ASSERT_OK(job->Start());
  // Let the channels fill up.
  ASSERT_TRUE(WaitUntil([&] { return job->Metrics().operators[3].rows_in >= 10'000; }));
  ASSERT_OK(job->TriggerCheckpoint().status());
  ASSERT_TRUE(job->AwaitCheckpoints(1, 60000))
      << job->CheckpointStatistics().last_failure;
  job->Cancel();
  ASSERT_OK(job->Wait());
  auto m = LoadMetadata(tmp / "ckpt/chk-1").ValueOrDie();
  ASSERT_TRUE(m.operators.count("union#2")) << "no channel state recorded";
  int64_t channel_rows = 0;
  for (const auto& [table, files] : m.operators["union#2"].instances[0].keyed) {
    EXPECT_EQ(table.rfind("__sabot_channel_state.", 0), 0u) << table;
    for (const auto& f : files) channel_rows += f.rows;
  }
  EXPECT_GT(channel_rows, 0);

  // Restore at parallelism 2 (the union's channel state goes to the instance
  // that inherits its key groups), unthrottled: the final counts are exact.
  JobOptions r = Options(2, tmp / "ckpt");
  r.checkpoint.restore_from = "latest";
  auto env2 = StreamEnvironment::Make(r);
  auto out = build(env2.get(), 0, std::make_shared<KeyedCountOptions>());
  ASSERT_OK(env2->Execute().status());
  EXPECT_EQ(Counts(*out), reference);
}

}  // namespace
}  // namespace sabot
