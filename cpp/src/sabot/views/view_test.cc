// Materialized tables and views (apply, get, scan, compaction, atomic batches),
// the view sink in jobs, the HTTP server and the file upsert sink, checked
// against plain references (MaterializeChangelog, std::map).
#include "sabot/views/view.h"

#include <arpa/inet.h>
#include <arrow/io/file.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <parquet/arrow/reader.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <random>
#include <thread>

#include "sabot/api/datastream.h"
#include "sabot/operators/changelog.h"
#include "sabot/operators/row_key.h"
#include "sabot/views/http_server.h"
#include "sabot/views/materialized_table.h"

namespace sabot {
namespace {

// A changelog batch: key k (int64), value v (int64), _op.
std::shared_ptr<arrow::RecordBatch> Changes(const std::vector<int64_t>& keys,
                                            const std::vector<int64_t>& values,
                                            const std::vector<int8_t>& ops) {
  arrow::Int64Builder k, v;
  arrow::Int8Builder o;
  EXPECT_TRUE(k.AppendValues(keys).ok());
  EXPECT_TRUE(v.AppendValues(values).ok());
  EXPECT_TRUE(o.AppendValues(ops).ok());
  auto schema =
      arrow::schema({arrow::field("k", arrow::int64()), arrow::field("v", arrow::int64()),
                     arrow::field(kChangeOpColumn, arrow::int8(), false)});
  return arrow::RecordBatch::Make(
      schema, static_cast<int64_t>(keys.size()),
      {k.Finish().ValueOrDie(), v.Finish().ValueOrDie(), o.Finish().ValueOrDie()});
}

std::map<int64_t, int64_t> ToMap(const arrow::Table& table) {
  std::map<int64_t, int64_t> out;
  auto combined = table.CombineChunksToBatch().ValueOrDie();
  auto k = std::static_pointer_cast<arrow::Int64Array>(combined->GetColumnByName("k"));
  auto v = std::static_pointer_cast<arrow::Int64Array>(combined->GetColumnByName("v"));
  for (int64_t i = 0; i < combined->num_rows(); ++i) {
    EXPECT_EQ(out.count(k->Value(i)), 0u) << "key " << k->Value(i) << " twice";
    out[k->Value(i)] = v->Value(i);
  }
  return out;
}

std::shared_ptr<arrow::Array> Key(int64_t k) {
  arrow::Int64Builder b;
  EXPECT_TRUE(b.Append(k).ok());
  return b.Finish().ValueOrDie();
}

// A random, well-formed changelog: +I for new keys, -U/+U pairs for updates,
// -D for deletes.
std::vector<std::shared_ptr<arrow::RecordBatch>> RandomChangelog(int batches, int keys,
                                                                 uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::map<int64_t, int64_t> live;
  std::vector<std::shared_ptr<arrow::RecordBatch>> out;
  for (int b = 0; b < batches; ++b) {
    std::vector<int64_t> ks, vs;
    std::vector<int8_t> ops;
    for (int i = 0; i < 1 + static_cast<int>(rng() % 100); ++i) {
      int64_t k = static_cast<int64_t>(rng() % keys);
      int64_t v = static_cast<int64_t>(rng() % 1000);
      auto it = live.find(k);
      if (it == live.end()) {
        ks.push_back(k), vs.push_back(v), ops.push_back(0);
        live[k] = v;
      } else if (rng() % 5 == 0) {
        ks.push_back(k), vs.push_back(it->second), ops.push_back(3);
        live.erase(it);
      } else {
        ks.push_back(k), vs.push_back(it->second), ops.push_back(1);
        ks.push_back(k), vs.push_back(v), ops.push_back(2);
        it->second = v;
      }
    }
    out.push_back(Changes(ks, vs, ops));
  }
  return out;
}

TEST(RowKeyTest, IntegersOfAnyWidthEncodeAlikeAndNullsAreMarked) {
  arrow::Int32Builder a;
  arrow::Int64Builder b;
  ASSERT_TRUE(a.AppendValues({1, -5}).ok());
  ASSERT_TRUE(a.AppendNull().ok());
  ASSERT_TRUE(b.AppendValues({1, -5, 0}).ok());
  EncodedKeys ka, kb;
  ASSERT_TRUE(EncodeRowKeys({a.Finish().ValueOrDie()}, &ka).ok());
  ASSERT_TRUE(EncodeRowKeys({b.Finish().ValueOrDie()}, &kb).ok());
  EXPECT_EQ(ka.key(0), kb.key(0));
  EXPECT_EQ(ka.key(1), kb.key(1));
  EXPECT_NE(ka.key(2), kb.key(2));
  EXPECT_EQ(ka.has_null[2], 1);
  // Two string columns: ("a", "bc") differs from ("ab", "c").
  arrow::StringBuilder s1, s2;
  ASSERT_TRUE(s1.AppendValues({"a", "ab"}).ok());
  ASSERT_TRUE(s2.AppendValues({"bc", "c"}).ok());
  EncodedKeys ks;
  ASSERT_TRUE(
      EncodeRowKeys({s1.Finish().ValueOrDie(), s2.Finish().ValueOrDie()}, &ks).ok());
  EXPECT_NE(ks.key(0), ks.key(1));
  EXPECT_TRUE(CheckRowKeyType(*arrow::list(arrow::int8()), "x").IsNotImplemented());
}

TEST(MaterializedTableTest, MatchesMaterializeChangelogWithCompaction) {
  auto batches = RandomChangelog(300, 50, 3);
  MaterializedTable table({"k"}, "test");
  for (const auto& b : batches) ASSERT_TRUE(table.Apply(b).ok());
  auto changelog = arrow::Table::FromRecordBatches(batches).ValueOrDie();
  auto want = MaterializeChangelog(changelog, {"k"}).ValueOrDie();
  auto got = table.Scan().ValueOrDie();
  EXPECT_EQ(ToMap(*got), ToMap(*want));
  EXPECT_EQ(table.num_rows(), want->num_rows());
  // Point lookups agree with the scan.
  auto expected = ToMap(*want);
  for (int64_t k = 0; k < 50; ++k) {
    auto row = table.Get({Key(k)}).ValueOrDie();
    if (expected.count(k)) {
      ASSERT_NE(row, nullptr);
      EXPECT_EQ(std::static_pointer_cast<arrow::Int64Array>(row->column(1))->Value(0),
                expected[k]);
    } else {
      EXPECT_EQ(row, nullptr);
    }
  }
  // An int32 key value is cast to the int64 key column.
  arrow::Int32Builder i32;
  ASSERT_TRUE(i32.Append(static_cast<int32_t>(expected.begin()->first)).ok());
  EXPECT_NE(table.Get({i32.Finish().ValueOrDie()}).ValueOrDie(), nullptr);
}

TEST(MaterializedTableTest, PlainStreamKeepsLatestRowPerKeyAndRejectsOtherSchemas) {
  arrow::Int64Builder k, v;
  ASSERT_TRUE(k.AppendValues({1, 2, 1}).ok());
  ASSERT_TRUE(v.AppendValues({10, 20, 11}).ok());
  auto schema = arrow::schema(
      {arrow::field("k", arrow::int64()), arrow::field("v", arrow::int64())});
  auto batch = arrow::RecordBatch::Make(
      schema, 3, {k.Finish().ValueOrDie(), v.Finish().ValueOrDie()});
  MaterializedTable table({"k"}, "view 'plain'");
  ASSERT_TRUE(table.Apply(batch).ok());
  EXPECT_EQ(ToMap(*table.Scan().ValueOrDie()),
            (std::map<int64_t, int64_t>{{1, 11}, {2, 20}}));
  auto other = Changes({1}, {1}, {0});
  auto st = table.Apply(other);
  EXPECT_TRUE(st.IsInvalid());
  EXPECT_NE(st.message().find("view 'plain'"), std::string::npos);
  MaterializedTable bad({"nope"}, "view 'bad'");
  st = bad.Apply(batch);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("nope"), std::string::npos);
}

TEST(MaterializedViewTest, ReadersNeverSeeHalfABatch) {
  // Every batch moves value between keys: the total stays 1000 after each
  // whole batch, so any consistent snapshot sums to 1000.
  auto view = std::make_shared<MaterializedView>("atomic", std::vector<std::string>{"k"});
  std::vector<int64_t> keys, values;
  std::vector<int8_t> ops;
  for (int64_t k = 0; k < 10; ++k)
    keys.push_back(k), values.push_back(100), ops.push_back(0);
  ASSERT_TRUE(view->Apply(Changes(keys, values, ops), 0).ok());
  std::atomic<bool> done{false};
  std::atomic<int64_t> bad{0}, reads{0};
  std::thread reader([&] {
    while (!done.load()) {
      auto table = view->Scan().ValueOrDie();
      int64_t total = 0;
      for (auto [k, v] : ToMap(*table)) total += v;
      if (total != 1000) bad.fetch_add(1);
      reads.fetch_add(1);
    }
  });
  std::mt19937_64 rng(1);
  std::vector<int64_t> current(10, 100);
  for (int b = 0; b < 2000; ++b) {
    int64_t from = static_cast<int64_t>(rng() % 10), to = (from + 1 + rng() % 9) % 10;
    int64_t amount = static_cast<int64_t>(rng() % 50);
    std::vector<int64_t> ks = {from, from, to, to};
    std::vector<int64_t> vs = {current[from], current[from] - amount, current[to],
                               current[to] + amount};
    current[from] -= amount;
    current[to] += amount;
    ASSERT_TRUE(view->Apply(Changes(ks, vs, {1, 2, 1, 2}), 0).ok());
  }
  done = true;
  reader.join();
  EXPECT_EQ(bad.load(), 0) << "of " << reads.load() << " reads";
  EXPECT_EQ(view->version(), 2001);
}

TEST(MaterializedViewTest, CheckpointConsistencyPublishesWhatEveryWriterCommitted) {
  MaterializedView view("ck", {"k"}, arrow::default_memory_pool(),
                        ViewConsistency::kCheckpoint);
  view.AttachWriter(0, 2);
  view.AttachWriter(1, 2);
  ASSERT_TRUE(view.Commit(0, 1, {Changes({1}, {10}, {0})}).ok());
  EXPECT_EQ(view.published_checkpoint(), -1);  // writer 1 has not committed 1
  EXPECT_EQ(view.num_rows(), 0);
  // Writer 1 was notified of 2 only (a later id implies the earlier ones).
  ASSERT_TRUE(view.Commit(1, 2, {Changes({2}, {20}, {0})}).ok());
  EXPECT_EQ(view.published_checkpoint(), 1);
  EXPECT_EQ(ToMap(*view.Scan().ValueOrDie()), (std::map<int64_t, int64_t>{{1, 10}}));
  ASSERT_TRUE(view.Commit(0, 2, {Changes({1, 1}, {10, 11}, {1, 2})}).ok());
  EXPECT_EQ(view.published_checkpoint(), 2);
  EXPECT_EQ(ToMap(*view.Scan().ValueOrDie()),
            (std::map<int64_t, int64_t>{{1, 11}, {2, 20}}));
  // End of input: published once both writers finished.
  ASSERT_TRUE(view.Finish(0, {Changes({3}, {30}, {0})}).ok());
  EXPECT_EQ(view.published_checkpoint(), 2);
  ASSERT_TRUE(view.Finish(1, {Changes({2}, {20}, {3})}).ok());
  EXPECT_EQ(view.published_checkpoint(), INT64_MAX);
  EXPECT_EQ(ToMap(*view.Scan().ValueOrDie()),
            (std::map<int64_t, int64_t>{{1, 11}, {3, 30}}));
}

TEST(MaterializedViewTest, JobMaintainsViewOfGroupAggregate) {
  std::mt19937_64 rng(9);
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  std::map<int64_t, int64_t> want;
  for (int b = 0; b < 20; ++b) {
    arrow::Int64Builder k, v;
    for (int i = 0; i < 100; ++i) {
      int64_t key = static_cast<int64_t>(rng() % 30),
              value = static_cast<int64_t>(rng() % 9);
      ASSERT_TRUE(k.Append(key).ok());
      ASSERT_TRUE(v.Append(value).ok());
      want[key] += value;
    }
    auto schema = arrow::schema(
        {arrow::field("k", arrow::int64()), arrow::field("x", arrow::int64())});
    batches.push_back(arrow::RecordBatch::Make(
        schema, 100, {k.Finish().ValueOrDie(), v.Finish().ValueOrDie()}));
  }
  for (int p : {1, 3}) {
    JobOptions options;
    options.parallelism = p;
    options.num_threads = 2;
    auto env = StreamEnvironment::Make(options);
    GroupAggregateOptions g;
    g.aggregates = {{"sum", "x", "v", nullptr}};
    auto view = env->FromBatches(batches[0]->schema(), batches)
                    .KeyBy({"k"})
                    .GroupAggregate(g)
                    .Materialize("sums", {"k"});
    ASSERT_TRUE(env->Execute().ok());
    EXPECT_EQ(ToMap(*view->Scan().ValueOrDie()), want) << "parallelism " << p;
    EXPECT_EQ(ViewRegistry::Global()->Find("sums"), view);
  }
  ViewRegistry::Global()->Remove("sums");
}

std::string HttpGet(int port, const std::string& target) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  std::string request = "GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n";
  EXPECT_EQ(::send(fd, request.data(), request.size(), 0),
            static_cast<ssize_t>(request.size()));
  std::string response;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) response.append(buf, n);
  ::close(fd);
  return response;
}

TEST(ViewHttpServerTest, ServesScansAndPointLookupsAsJson) {
  ViewRegistry registry;
  auto view = std::make_shared<MaterializedView>("v", std::vector<std::string>{"k"});
  registry.Register(view);
  ASSERT_TRUE(view->Apply(Changes({1, 2}, {10, 20}, {0, 0}), 0).ok());

  auto [status, body] = ViewHttpServer::Respond(&registry, "GET", "/views/v?key=2");
  EXPECT_EQ(status, 200);
  EXPECT_EQ(body, "{\"k\":2,\"v\":20}");
  std::tie(status, body) = ViewHttpServer::Respond(&registry, "GET", "/views/v?k=3");
  EXPECT_EQ(status, 404);
  std::tie(status, body) = ViewHttpServer::Respond(&registry, "GET", "/views/v?key=abc");
  EXPECT_EQ(status, 400);
  EXPECT_NE(body.find("not a valid value"), std::string::npos) << body;
  std::tie(status, body) = ViewHttpServer::Respond(&registry, "GET", "/views/nope");
  EXPECT_EQ(status, 404);
  std::tie(status, body) = ViewHttpServer::Respond(&registry, "POST", "/views/v");
  EXPECT_EQ(status, 405);
  std::tie(status, body) = ViewHttpServer::Respond(&registry, "GET", "/views");
  EXPECT_EQ(body,
            "{\"views\": [{\"name\": \"v\", \"keys\": [\"k\"], \"num_rows\": 2, "
            "\"version\": 1, \"consistency\": \"latest\"}]}");

  auto server = ViewHttpServer::Start("127.0.0.1", 0, &registry).ValueOrDie();
  ASSERT_GT(server->port(), 0);
  std::string response = HttpGet(server->port(), "/views/v");
  EXPECT_EQ(response.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << response;
  EXPECT_NE(response.find("\"num_rows\": 2"), std::string::npos) << response;
  EXPECT_NE(response.find("{\"k\":1,\"v\":10}"), std::string::npos) << response;
  response = HttpGet(server->port(), "/views/v?key=9");
  EXPECT_EQ(response.rfind("HTTP/1.1 404 Not Found\r\n", 0), 0u) << response;
  server->Stop();
}

TEST(FileUpsertSinkTest, WritesTheMaterializedTableAtomically) {
  auto batches = RandomChangelog(100, 40, 17);
  auto dir = std::filesystem::temp_directory_path() / "sabot_file_upsert_test";
  std::filesystem::remove_all(dir);
  JobOptions options;
  options.parallelism = 2;
  options.num_threads = 2;
  auto env = StreamEnvironment::Make(options);
  FileUpsertSinkOptions o;
  o.path = dir.string();
  o.key_columns = {"k"};
  auto files = env->FromBatches(batches[0]->schema(), batches).WriteUpsertFiles(o);
  ASSERT_TRUE(env->Execute().ok());
  EXPECT_EQ(files->load(), 2);
  std::map<int64_t, int64_t> got;
  for (int i = 0; i < 2; ++i) {
    auto path = (dir / ("part-" + std::to_string(i) + ".parquet")).string();
    auto input = arrow::io::ReadableFile::Open(path).ValueOrDie();
    auto reader =
        parquet::arrow::OpenFile(input, arrow::default_memory_pool()).ValueOrDie();
    auto table = reader->ReadTable().ValueOrDie();
    for (auto [k, v] : ToMap(*table)) got[k] = v;
  }
  auto changelog = arrow::Table::FromRecordBatches(batches).ValueOrDie();
  EXPECT_EQ(got, ToMap(*MaterializeChangelog(changelog, {"k"}).ValueOrDie()));
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    EXPECT_EQ(entry.path().extension(), ".parquet") << entry.path();  // no temp left
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sabot
