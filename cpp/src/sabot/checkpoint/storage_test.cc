// Checkpoint storage: metadata round trip, writer/reader at other
// parallelisms, retention, shared-file garbage collection, validation and the
// fallback from a corrupted or partial latest checkpoint.
#include "sabot/checkpoint/storage.h"

#include <arrow/array/builder_binary.h>
#include <arrow/array/builder_primitive.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "sabot/checkpoint/file_snapshot.h"
#include "sabot/checkpoint/metadata.h"
#include "sabot/exec/partitioner.h"

namespace sabot::checkpoint {
namespace {

namespace fs = std::filesystem;

#define ASSERT_OK(expr)                                       \
  do {                                                        \
    auto _st = (expr);                                        \
    ASSERT_TRUE(_st.ok()) << #expr << ": " << _st.ToString(); \
  } while (false)

template <typename T>
T ValueOrFail(arrow::Result<T> r) {
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.MoveValueUnsafe();
}

class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    path_ =
        (fs::temp_directory_path() / ("sabot_ckpt_test_" + std::to_string(::getpid()) +
                                      "_" + std::to_string(counter++)))
            .string();
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

std::shared_ptr<arrow::RecordBatch> KeyValueBatch(const std::vector<int64_t>& keys) {
  arrow::Int64Builder k, v;
  for (int64_t key : keys) {
    EXPECT_TRUE(k.Append(key).ok());
    EXPECT_TRUE(v.Append(key * 10).ok());
  }
  auto schema = arrow::schema(
      {arrow::field("key", arrow::int64()), arrow::field("value", arrow::int64())});
  return arrow::RecordBatch::Make(schema, static_cast<int64_t>(keys.size()),
                                  {k.Finish().ValueOrDie(), v.Finish().ValueOrDie()});
}

std::set<int64_t> Keys(const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches) {
  std::set<int64_t> out;
  for (const auto& b : batches) {
    auto col = std::static_pointer_cast<arrow::Int64Array>(b->GetColumnByName("key"));
    for (int64_t i = 0; i < col->length(); ++i) out.insert(col->Value(i));
  }
  return out;
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
}

std::string ReadText(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// Writes a checkpoint of operator "op" at parallelism `p` whose instance i
// owns the keys that hash to its key groups; returns the metadata (written).
CheckpointMetadata WriteCheckpoint(CheckpointStore* store, int64_t id, int p,
                                   const std::vector<int64_t>& keys,
                                   const std::string& local_dir = "",
                                   const std::vector<std::string>& shared = {}) {
  const std::string dir = store->CheckpointPath(id);
  CheckpointMetadata m;
  m.checkpoint_id = id;
  m.job_name = "test";
  m.max_parallelism = 128;
  OperatorMetadata op;
  op.uid = "op";
  op.parallelism = p;
  for (int i = 0; i < p; ++i) {
    FileSnapshotWriter writer(id, "op", i, p, 128);
    // Every instance writes every key; restoring filters by key group.
    EXPECT_TRUE(writer.WriteKeyed("counts", KeyValueBatch(keys), {"key"}).ok());
    EXPECT_TRUE(writer.WriteOperatorState("offsets", KeyValueBatch({i})).ok());
    if (!local_dir.empty())
      EXPECT_TRUE(writer.AddFiles("db", local_dir, {}, shared).ok());
    op.instances.push_back(
        ValueOrFail(writer.Persist(dir, store, false, arrow::default_memory_pool())));
  }
  m.operators["op"] = op;
  EXPECT_TRUE(CreateDirectories(dir).ok());
  EXPECT_TRUE(WriteFileAtomically(dir + "/_metadata", MetadataToJson(m)).ok());
  m.directory = dir;
  return m;
}

TEST(CheckpointMetadataTest, JsonRoundTrip) {
  CheckpointMetadata m;
  m.checkpoint_id = 42;
  m.kind = "savepoint";
  m.job_name = "a \"quoted\" job";
  m.timestamp_ms = 1700000000000;
  m.max_parallelism = 64;
  OperatorMetadata op;
  op.uid = "count#3";
  op.parallelism = 2;
  for (int i = 0; i < 2; ++i) {
    InstanceMetadata inst;
    inst.index = i;
    inst.key_groups = KeyGroupRange::ForInstance(i, 2, 64);
    inst.keyed["counts"].push_back({"count_3/0/keyed.counts.arrow", 123, 0xdeadbeef, 7});
    inst.operator_state["pos"].push_back({"count_3/0/op.pos.arrow", 10, 1, 1});
    inst.files["db"].private_files.push_back({"MANIFEST", {"x/MANIFEST", 5, 2, -1}});
    inst.files["db"].shared_files.push_back(
        {"001.sst", {"../shared/a/001.sst", 9, 3, -1}});
    inst.positions_json["pos"] = "[{\"split\": 0}]";
    op.instances.push_back(inst);
  }
  m.operators[op.uid] = op;
  auto parsed = ValueOrFail(MetadataFromJson(MetadataToJson(m), "mem"));
  EXPECT_EQ(parsed.checkpoint_id, 42);
  EXPECT_EQ(parsed.kind, "savepoint");
  EXPECT_EQ(parsed.job_name, m.job_name);
  EXPECT_EQ(parsed.timestamp_ms, m.timestamp_ms);
  EXPECT_EQ(parsed.max_parallelism, 64);
  ASSERT_EQ(parsed.operators.count("count#3"), 1u);
  const auto& pop = parsed.operators["count#3"];
  ASSERT_EQ(pop.instances.size(), 2u);
  EXPECT_EQ(pop.instances[1].key_groups.first, 32);
  EXPECT_EQ(pop.instances[1].key_groups.last, 63);
  EXPECT_EQ(pop.instances[0].keyed.at("counts")[0].crc32, 0xdeadbeefu);
  EXPECT_EQ(pop.instances[0].keyed.at("counts")[0].rows, 7);
  EXPECT_EQ(pop.instances[0].files.at("db").shared_files[0].file.path,
            "../shared/a/001.sst");
  EXPECT_EQ(pop.instances[0].files.at("db").private_files[0].name, "MANIFEST");
  EXPECT_EQ(parsed.AllFiles().size(), 4u);  // the two instances name the same paths
}

TEST(CheckpointMetadataTest, ErrorsNameTheFileAndTheProblem) {
  auto bad = MetadataFromJson("{not json", "/x/_metadata");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("/x/_metadata"), std::string::npos);
  auto missing = MetadataFromJson(
      R"({"format_version": 1, "kind": "checkpoint", "checkpoint_id": 1})",
      "/y/_metadata");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("job_name"), std::string::npos)
      << missing.status().ToString();
  auto version = MetadataFromJson(R"({"format_version": 99})", "/z/_metadata");
  ASSERT_FALSE(version.ok());
  EXPECT_NE(version.status().message().find("format_version 99"), std::string::npos);
}

TEST(FileSnapshotTest, WriterRecordsOnlyUntilPersistThenReaderRescales) {
  TempDir tmp;
  const std::string dir = tmp / "chk-1";
  std::vector<int64_t> keys;
  for (int64_t k = 0; k < 500; ++k) keys.push_back(k);
  // Two old instances; each owns the keys of its key groups.
  std::vector<std::unique_ptr<FileSnapshotWriter>> writers;
  for (int i = 0; i < 2; ++i) {
    auto range = KeyGroupRange::ForInstance(i, 2, 128);
    std::vector<int64_t> owned;
    auto all = KeyValueBatch(keys);
    auto groups =
        ValueOrFail(ComputeKeyGroups(*all, {"key"}, 128, arrow::default_memory_pool()));
    for (int64_t r = 0; r < all->num_rows(); ++r) {
      if (range.Contains(groups->Value(r))) owned.push_back(keys[r]);
    }
    auto w = std::make_unique<FileSnapshotWriter>(1, "op", i, 2, 128);
    // Two schemas for one table: two files.
    ASSERT_OK(w->WriteKeyed("counts", KeyValueBatch(owned), {"key"}));
    ASSERT_OK(w->WriteOperatorState("offsets", KeyValueBatch({i})));
    writers.push_back(std::move(w));
  }
  // The synchronous part did no I/O.
  EXPECT_FALSE(fs::exists(dir));
  CheckpointMetadata m;
  m.checkpoint_id = 1;
  m.max_parallelism = 128;
  m.operators["op"].uid = "op";
  m.operators["op"].parallelism = 2;
  for (auto& w : writers) {
    m.operators["op"].instances.push_back(
        ValueOrFail(w->Persist(dir, nullptr, true, arrow::default_memory_pool())));
  }
  EXPECT_TRUE(fs::exists(dir + "/op/0/keyed.counts.arrow"));
  EXPECT_TRUE(fs::exists(dir + "/op/1/op.offsets.arrow"));
  ASSERT_OK(WriteFileAtomically(dir + "/_metadata", MetadataToJson(m)));
  auto loaded = std::make_shared<CheckpointMetadata>(ValueOrFail(LoadMetadata(dir)));
  ASSERT_OK(VerifyFiles(*loaded));

  for (int p : {1, 3, 5}) {
    std::set<int64_t> seen;
    for (int i = 0; i < p; ++i) {
      FileSnapshotReader reader(loaded, "op", i, p, arrow::default_memory_pool());
      auto batches = ValueOrFail(reader.ReadKeyed("counts"));
      for (const auto& b : batches) {
        EXPECT_EQ(b->schema()->GetFieldIndex(kKeyGroupColumn), -1);
        auto vals =
            std::static_pointer_cast<arrow::Int64Array>(b->GetColumnByName("value"));
        auto ks = std::static_pointer_cast<arrow::Int64Array>(b->GetColumnByName("key"));
        for (int64_t r = 0; r < b->num_rows(); ++r)
          EXPECT_EQ(vals->Value(r), ks->Value(r) * 10);
      }
      for (int64_t k : Keys(batches)) {
        EXPECT_TRUE(seen.insert(k).second) << "key " << k << " restored twice at p=" << p;
      }
      // Operator state: the union of what every old instance wrote.
      EXPECT_EQ(Keys(ValueOrFail(reader.ReadOperatorState("offsets"))),
                (std::set<int64_t>{0, 1}));
      EXPECT_TRUE(ValueOrFail(reader.ReadKeyed("no_such_table")).empty());
    }
    EXPECT_EQ(seen.size(), keys.size()) << "p=" << p;
  }
  FileSnapshotReader unknown(loaded, "other", 0, 1, arrow::default_memory_pool());
  EXPECT_TRUE(ValueOrFail(unknown.ReadKeyed("counts")).empty());
}

TEST(FileSnapshotTest, FilesArePrivateOrSharedAndMaterializedOnRestore) {
  TempDir tmp;
  const std::string local = tmp / "db";
  fs::create_directories(local);
  WriteText(local + "/MANIFEST", "manifest-1");
  WriteText(local + "/001.sst", std::string(1000, 'a'));
  CheckpointStore store(tmp / "ckpt", 3);
  std::vector<std::string> log;
  ASSERT_OK(store.Open(&log));
  FileSnapshotWriter w(1, "rocks", 0, 1, 128);
  ASSERT_OK(w.AddFiles("db", local, {"MANIFEST"}, {"001.sst"}));
  EXPECT_FALSE(w.AddFiles("db", local, {"../escape"}, {}).ok());
  const std::string dir = store.CheckpointPath(1);
  auto inst = ValueOrFail(w.Persist(dir, &store, false, arrow::default_memory_pool()));
  ASSERT_EQ(inst.files["db"].shared_files.size(), 1u);
  EXPECT_EQ(inst.files["db"].shared_files[0].file.path.rfind("../shared/rocks/db/", 0),
            0u);
  CheckpointMetadata m;
  m.checkpoint_id = 1;
  m.operators["rocks"].uid = "rocks";
  m.operators["rocks"].instances.push_back(inst);
  ASSERT_OK(WriteFileAtomically(dir + "/_metadata", MetadataToJson(m)));
  auto loaded = std::make_shared<CheckpointMetadata>(ValueOrFail(LoadMetadata(dir)));
  ASSERT_OK(VerifyFiles(*loaded));
  FileSnapshotReader reader(loaded, "rocks", 0, 1, arrow::default_memory_pool());
  auto sets = ValueOrFail(reader.ReadFiles("db", tmp / "scratch"));
  ASSERT_EQ(sets.size(), 1u);
  EXPECT_EQ(ReadText(sets[0].dir + "/MANIFEST"), "manifest-1");
  EXPECT_EQ(ReadText(sets[0].dir + "/001.sst"), std::string(1000, 'a'));
  // The private copy is independent of the stored one.
  WriteText(sets[0].dir + "/MANIFEST", "changed");
  ASSERT_OK(VerifyFiles(*loaded));
}

TEST(CheckpointStoreTest, RetainsTheLastCheckpointsAndCollectsSharedFiles) {
  TempDir tmp;
  const std::string local = tmp / "db";
  fs::create_directories(local);
  WriteText(local + "/a.sst", std::string(100, 'a'));
  WriteText(local + "/b.sst", std::string(200, 'b'));
  WriteText(local + "/c.sst", std::string(300, 'c'));
  CheckpointStore store(tmp / "ckpt", 2);
  std::vector<std::string> log;
  ASSERT_OK(store.Open(&log));
  auto m1 = WriteCheckpoint(&store, 1, 1, {1, 2}, local, {"a.sst"});
  ASSERT_OK(store.AddCompleted(m1, &log));
  EXPECT_EQ(store.shared_bytes_copied(), 100);
  auto m2 = WriteCheckpoint(&store, 2, 1, {1, 2}, local, {"a.sst", "b.sst"});
  // a.sst is referenced, not copied again (incremental).
  EXPECT_EQ(store.shared_bytes_copied(), 300);
  ASSERT_OK(store.AddCompleted(m2, &log));
  auto shared_files = [&] {
    std::set<std::string> names;
    for (auto& e : fs::recursive_directory_iterator(tmp / "ckpt/shared")) {
      if (e.is_regular_file()) names.insert(e.path().filename().string().substr(0, 5));
    }
    return names;
  };
  EXPECT_EQ(shared_files(), (std::set<std::string>{"a.sst", "b.sst"}));
  auto m3 = WriteCheckpoint(&store, 3, 1, {1, 2}, local, {"b.sst", "c.sst"});
  ASSERT_OK(store.AddCompleted(m3, &log));
  // Retain 2: chk-1 is gone; a.sst is still referenced by chk-2.
  EXPECT_FALSE(fs::exists(tmp / "ckpt/chk-1"));
  EXPECT_TRUE(fs::exists(tmp / "ckpt/chk-2/_metadata"));
  EXPECT_EQ(shared_files(), (std::set<std::string>{"a.sst", "b.sst", "c.sst"}));
  auto m4 = WriteCheckpoint(&store, 4, 1, {1, 2}, local, {"c.sst"});
  ASSERT_OK(store.AddCompleted(m4, &log));
  EXPECT_FALSE(fs::exists(tmp / "ckpt/chk-2"));
  EXPECT_EQ(shared_files(), (std::set<std::string>{"b.sst", "c.sst"}));
  auto m5 = WriteCheckpoint(&store, 5, 1, {1, 2});
  ASSERT_OK(store.AddCompleted(m5, &log));
  EXPECT_EQ(shared_files(), (std::set<std::string>{"c.sst"}));
  // Every retained checkpoint still verifies (nothing it references was removed).
  for (const auto& m : store.retained()) ASSERT_OK(VerifyFiles(m));
  // A new store over the same directory sees the retained checkpoints and
  // removes a partial one.
  fs::create_directories(tmp / "ckpt/chk-6/op");
  CheckpointStore reopened(tmp / "ckpt", 2);
  ASSERT_OK(reopened.Open(&log));
  EXPECT_EQ(reopened.retained().size(), 2u);
  EXPECT_EQ(reopened.max_checkpoint_id(), 6);
  EXPECT_FALSE(fs::exists(tmp / "ckpt/chk-6"));
}

TEST(CheckpointStoreTest, SameNameDifferentContentIsStoredApart) {
  TempDir tmp;
  const std::string local = tmp / "db";
  fs::create_directories(local);
  WriteText(local + "/x.sst", "first content");
  CheckpointStore store(tmp / "ckpt", 5);
  std::vector<std::string> log;
  ASSERT_OK(store.Open(&log));
  auto f1 = ValueOrFail(store.PutShared(local + "/x.sst", "op", "db", "x.sst",
                                        store.CheckpointPath(1), false));
  // A different file under the same name (e.g. a rescaled instance's SST).
  fs::remove(local + "/x.sst");
  WriteText(local + "/x.sst", "second content!");
  auto f2 = ValueOrFail(store.PutShared(local + "/x.sst", "op", "db", "x.sst",
                                        store.CheckpointPath(2), false));
  EXPECT_NE(f1.path, f2.path);
  EXPECT_EQ(ReadText(JoinPath(store.CheckpointPath(1), f1.path)), "first content");
  EXPECT_EQ(ReadText(JoinPath(store.CheckpointPath(2), f2.path)), "second content!");
}

TEST(RestoreTest, CorruptedOrPartialLatestFallsBackToThePreviousOne) {
  TempDir tmp;
  CheckpointStore store(tmp / "ckpt", 10);
  std::vector<std::string> log;
  ASSERT_OK(store.Open(&log));
  for (int64_t id = 1; id <= 4; ++id) {
    ASSERT_OK(store.AddCompleted(WriteCheckpoint(&store, id, 2, {1, 2, 3}), &log));
  }
  // chk-5: partial (no _metadata).
  fs::create_directories(tmp / "ckpt/chk-5/op/0");
  // chk-4: a state file flipped one byte (same size, wrong CRC).
  const std::string state4 = tmp / "ckpt/chk-4/op/1/keyed.counts.arrow";
  std::string bytes = ReadText(state4);
  bytes[bytes.size() / 2] ^= 0x5a;
  WriteText(state4, bytes);
  // chk-3: a state file truncated.
  const std::string state3 = tmp / "ckpt/chk-3/op/0/op.offsets.arrow";
  fs::resize_file(state3, 10);
  log.clear();
  auto chosen = ValueOrFail(ResolveRestore("latest", tmp / "ckpt", &log));
  ASSERT_TRUE(chosen.has_value());
  EXPECT_EQ(chosen->checkpoint_id, 2);
  std::string all;
  for (const auto& l : log) all += l + "\n";
  EXPECT_NE(all.find("chk-5"), std::string::npos) << all;
  EXPECT_NE(all.find("partial"), std::string::npos) << all;
  EXPECT_NE(all.find(state4), std::string::npos) << all;
  EXPECT_NE(all.find("CRC-32"), std::string::npos) << all;
  EXPECT_NE(all.find(state3), std::string::npos) << all;
  EXPECT_NE(all.find("has 10 bytes"), std::string::npos) << all;

  // An explicit path is not replaced by another one: the error names the file.
  auto explicit_bad = ResolveRestore(tmp / "ckpt/chk-4", "", &log);
  ASSERT_FALSE(explicit_bad.ok());
  EXPECT_NE(explicit_bad.status().message().find(state4), std::string::npos);
  // Unparsable metadata and a missing file.
  WriteText(tmp / "ckpt/chk-2/_metadata", "{\"format_version\": 1, ");
  auto unparsable = ResolveRestore(tmp / "ckpt/chk-2", "", &log);
  ASSERT_FALSE(unparsable.ok());
  EXPECT_NE(unparsable.status().message().find("chk-2/_metadata"), std::string::npos)
      << unparsable.status().ToString();
  fs::remove(tmp / "ckpt/chk-1/op/1/keyed.counts.arrow");
  auto missing = ResolveRestore(tmp / "ckpt/chk-1", "", &log);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("is missing"), std::string::npos);
  // The checkpoint directory itself is not a checkpoint.
  auto root = ResolveRestore(tmp / "ckpt", "", &log);
  ASSERT_FALSE(root.ok());
  EXPECT_NE(root.status().message().find("is a checkpoint directory"), std::string::npos);
  // Nothing usable left: "latest" refuses with every reason.
  auto none = ResolveRestore("latest", tmp / "ckpt", &log);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("no usable checkpoint"), std::string::npos);
  // An empty directory: a fresh start.
  fs::create_directories(tmp / "empty");
  auto fresh = ValueOrFail(ResolveRestore("latest", tmp / "empty", &log));
  EXPECT_FALSE(fresh.has_value());
}

TEST(StorageTest, SanitizedNamesNeverCollide) {
  EXPECT_EQ(SanitizeName("counts"), "counts");
  EXPECT_NE(SanitizeName("count#3"), SanitizeName("count_3"));
  EXPECT_EQ(SanitizeName("count#3").find('#'), std::string::npos);
  EXPECT_NE(SanitizeName(".."), "..");
  EXPECT_NE(SanitizeName("a/b"), SanitizeName("a_b"));
}

TEST(StorageTest, AtomicWriteAndChecksumMatchZlib) {
  TempDir tmp;
  ASSERT_OK(WriteFileAtomically(tmp / "f", "hello"));
  EXPECT_EQ(ReadText(tmp / "f"), "hello");
  auto sum = ValueOrFail(ChecksumFile(tmp / "f"));
  EXPECT_EQ(sum.size, 5);
  EXPECT_EQ(sum.crc32, 0x3610a686u);  // zlib.crc32(b"hello")
  // Only the final file is left (no temporary names).
  int files = 0;
  for (auto& e : fs::directory_iterator(tmp.path())) files += e.is_regular_file();
  EXPECT_EQ(files, 1);
}

}  // namespace
}  // namespace sabot::checkpoint
