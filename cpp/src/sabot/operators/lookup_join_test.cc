// Lookup join against the repo's real PostgreSQL server (scripts/postgres.sh;
// `make test` starts it). Without a server the tests skip, unless
// SABOT_REQUIRE_POSTGRES=1 (as in `make test`), where they fail.
#include "sabot/operators/lookup_join.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "sabot/api/datastream.h"
#include "sabot/connectors/postgres/postgres_client.h"
#include "sabot/connectors/postgres/postgres_table.h"
#include "sabot/plan/registry.h"

namespace sabot {
namespace {

std::string Dsn() {
  const char* env = std::getenv("SABOT_POSTGRES_DSN");
  return env ? env : "host=127.0.0.1 port=15432 user=sabot dbname=sabot";
}

#define REQUIRE_POSTGRES()                                                        \
  do {                                                                            \
    if (!postgres::ServerAvailable(Dsn())) {                                      \
      const char* req = std::getenv("SABOT_REQUIRE_POSTGRES");                    \
      if (req && std::string(req) == "1") FAIL() << "no PostgreSQL at " << Dsn(); \
      GTEST_SKIP() << "no PostgreSQL at " << Dsn() << " (make postgres-up)";      \
    }                                                                             \
  } while (0)

// customers(id bigint primary key, name text, tier int): ids 0..n-1 except
// multiples of 7; tier = id % 3, name "c<id>".
void CreateCustomers(const std::string& table, int n) {
  std::string sql = "DROP TABLE IF EXISTS " + table + "; CREATE TABLE " + table +
                    " (id bigint PRIMARY KEY, name text, tier integer); INSERT INTO " +
                    table + " SELECT i, 'c' || i, i % 3 FROM generate_series(0, " +
                    std::to_string(n - 1) + ") AS i WHERE i % 7 <> 0";
  auto r = postgres::ExecuteSql(Dsn(), sql);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
}

std::shared_ptr<arrow::RecordBatch> Orders(const std::vector<int64_t>& customer,
                                           int64_t first_id) {
  arrow::Int64Builder id, c;
  for (size_t i = 0; i < customer.size(); ++i) {
    EXPECT_TRUE(id.Append(first_id + static_cast<int64_t>(i)).ok());
    if (customer[i] < 0) {
      EXPECT_TRUE(c.AppendNull().ok());
    } else {
      EXPECT_TRUE(c.Append(customer[i]).ok());
    }
  }
  auto schema = arrow::schema(
      {arrow::field("order", arrow::int64()), arrow::field("customer", arrow::int64())});
  return arrow::RecordBatch::Make(schema, static_cast<int64_t>(customer.size()),
                                  {id.Finish().ValueOrDie(), c.Finish().ValueOrDie()});
}

LookupJoinOptions Options(const std::string& table) {
  postgres::PostgresTableOptions t;
  t.dsn = Dsn();
  t.table = table;
  t.key_columns = {"id"};
  LookupJoinOptions o;
  o.table = postgres::MakePostgresLookupTable(t);
  o.keys = {"customer"};
  return o;
}

// order -> (name, tier) of the joined rows; null name when unmatched.
std::map<int64_t, std::pair<std::string, int64_t>> Collect(const CollectBuffer& buffer) {
  std::map<int64_t, std::pair<std::string, int64_t>> out;
  for (const auto& b : buffer.batches()) {
    auto order = std::static_pointer_cast<arrow::Int64Array>(b->GetColumnByName("order"));
    auto name = std::static_pointer_cast<arrow::StringArray>(b->GetColumnByName("name"));
    auto tier = std::static_pointer_cast<arrow::Int32Array>(b->GetColumnByName("tier"));
    for (int64_t i = 0; i < b->num_rows(); ++i) {
      EXPECT_EQ(out.count(order->Value(i)), 0u)
          << "order " << order->Value(i) << " twice";
      out[order->Value(i)] = {name->IsNull(i) ? "<null>" : name->GetString(i),
                              tier->IsNull(i) ? -1 : tier->Value(i)};
    }
  }
  return out;
}

TEST(LookupJoinTest, MatchesBruteForceJoinAtParallelism1And3) {
  REQUIRE_POSTGRES();
  CreateCustomers("lj_customers", 500);
  std::mt19937_64 rng(5);
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  std::vector<int64_t> all;
  for (int b = 0, next = 0; b < 40; ++b) {
    std::vector<int64_t> customers;
    for (int i = 0; i < 1 + static_cast<int>(rng() % 300); ++i) {
      // Keys 0..599: some have no row (multiples of 7, >= 500); some null.
      int64_t c = rng() % 50 == 0 ? -1 : static_cast<int64_t>(rng() % 600);
      customers.push_back(c);
      all.push_back(c);
    }
    batches.push_back(Orders(customers, next));
    next += static_cast<int>(customers.size());
  }
  for (JoinType type : {JoinType::kInner, JoinType::kLeft}) {
    for (int p : {1, 3}) {
      JobOptions options;
      options.parallelism = p;
      options.num_threads = 2;
      auto env = StreamEnvironment::Make(options);
      LookupJoinOptions o = Options("lj_customers");
      o.type = type;
      o.cache_max_entries = 64;  // small: evictions while batches are in flight
      o.max_in_flight = 3;
      auto stats = o.stats;
      auto buffer =
          env->FromBatches(batches[0]->schema(), batches).LookupJoin(o).Collect();
      auto result = env->Execute();
      ASSERT_TRUE(result.ok()) << result.status().ToString();
      auto got = Collect(*buffer);
      std::map<int64_t, std::pair<std::string, int64_t>> want;
      for (size_t i = 0; i < all.size(); ++i) {
        int64_t c = all[i];
        bool exists = c >= 0 && c < 500 && c % 7 != 0;
        if (exists) {
          want[static_cast<int64_t>(i)] = {"c" + std::to_string(c), c % 3};
        } else if (type == JoinType::kLeft) {
          want[static_cast<int64_t>(i)] = {"<null>", -1};
        }
      }
      EXPECT_EQ(got, want) << JoinTypeName(type) << " join at parallelism " << p;
      auto s = stats.get();
      EXPECT_GT(s->cache_hits.load(), 0);
      EXPECT_GT(s->queries.load(), 0);
      EXPECT_GT(s->cache_evictions.load(), 0);
      EXPECT_LE(s->cache_entries.load(), 64 * p);
    }
  }
}

TEST(LookupJoinTest, OrderedOutputKeepsInputOrderAndChainedOperatorsSeeEverything) {
  REQUIRE_POSTGRES();
  CreateCustomers("lj_order", 100);
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  for (int b = 0; b < 20; ++b) {
    std::vector<int64_t> c;
    for (int i = 0; i < 10; ++i) c.push_back((b * 10 + i) % 100);
    batches.push_back(Orders(c, b * 10));
  }
  JobOptions options;
  options.parallelism = 1;
  options.num_threads = 2;
  auto env = StreamEnvironment::Make(options);
  LookupJoinOptions o = Options("lj_order");
  o.type = JoinType::kLeft;
  o.cache_max_entries = 0;  // every batch queries: many in flight
  o.max_in_flight = 4;
  // Chained: source -> lookup (no key_by) -> filter -> collect.
  auto joined = env->FromBatches(batches[0]->schema(), batches).LookupJoin(o, false);
  auto buffer =
      joined
          .Filter(arrow::compute::greater_equal(arrow::compute::field_ref("order"),
                                                arrow::compute::literal(int64_t{0})))
          .Collect();
  auto result = env->Execute();
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  std::vector<int64_t> orders;
  for (const auto& b : buffer->batches()) {
    auto col = std::static_pointer_cast<arrow::Int64Array>(b->GetColumnByName("order"));
    for (int64_t i = 0; i < b->num_rows(); ++i) orders.push_back(col->Value(i));
  }
  ASSERT_EQ(orders.size(), 200u);
  for (size_t i = 0; i < orders.size(); ++i)
    EXPECT_EQ(orders[i], static_cast<int64_t>(i));
}

TEST(LookupJoinTest, UnorderedEmitsEveryRowOnce) {
  REQUIRE_POSTGRES();
  CreateCustomers("lj_unordered", 100);
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  for (int b = 0; b < 30; ++b) {
    std::vector<int64_t> c;
    for (int i = 0; i < 7; ++i) c.push_back((b * 13 + i * 3) % 120);
    batches.push_back(Orders(c, b * 7));
  }
  auto env = StreamEnvironment::Make({});
  LookupJoinOptions o = Options("lj_unordered");
  o.type = JoinType::kLeft;
  o.ordered = false;
  o.connections = 3;
  o.max_in_flight = 8;
  auto buffer = env->FromBatches(batches[0]->schema(), batches).LookupJoin(o).Collect();
  ASSERT_TRUE(env->Execute().ok());
  auto got = Collect(*buffer);
  EXPECT_EQ(got.size(), 210u);
}

TEST(LookupJoinTest, ErrorsNameOperatorTableAndColumn) {
  REQUIRE_POSTGRES();
  CreateCustomers("lj_errors", 10);
  auto run = [](LookupJoinOptions o, std::shared_ptr<arrow::RecordBatch> input) {
    JobOptions options;
    options.parallelism = 1;
    auto env = StreamEnvironment::Make(options);
    env->FromBatches(input->schema(), {input}).LookupJoin(std::move(o)).Discard();
    return env->Execute().status();
  };
  auto orders = Orders({1, 2, 3}, 0);

  // Unknown table.
  auto st = run(Options("lj_no_such_table"), orders);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("lookup_join"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("lj_no_such_table"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("does not exist"), std::string::npos) << st.ToString();

  // Unknown column.
  postgres::PostgresTableOptions t;
  t.dsn = Dsn();
  t.table = "lj_errors";
  t.key_columns = {"id"};
  t.columns = {"name", "nope"};
  LookupJoinOptions o = Options("lj_errors");
  o.table = postgres::MakePostgresLookupTable(t);
  st = run(o, orders);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("no column 'nope'"), std::string::npos) << st.ToString();

  // Key type mismatch: a string stream key against a bigint column.
  arrow::StringBuilder sb;
  ASSERT_TRUE(sb.AppendValues({"1", "2"}).ok());
  auto strings =
      arrow::RecordBatch::Make(arrow::schema({arrow::field("customer", arrow::utf8())}),
                               2, {sb.Finish().ValueOrDie()});
  st = run(Options("lj_errors"), strings);
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(st.IsTypeError()) << st.ToString();
  EXPECT_NE(st.message().find("key column 'id' is bigint"), std::string::npos)
      << st.ToString();
  EXPECT_NE(st.message().find("'customer' is string"), std::string::npos)
      << st.ToString();

  // Connection refused: retried, then the job fails.
  t.columns = {};
  t.dsn = "host=127.0.0.1 port=1 user=sabot dbname=sabot connect_timeout=2";
  o.table = postgres::MakePostgresLookupTable(t);
  o.max_retries = 2;
  o.retry_backoff_ms = 10;
  auto stats = o.stats;
  st = run(o, orders);
  ASSERT_FALSE(st.ok());
  EXPECT_TRUE(st.IsIOError()) << st.ToString();
  EXPECT_NE(st.message().find("cannot connect"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("gave up after 2 retries"), std::string::npos)
      << st.ToString();
  EXPECT_EQ(stats->retries.load(), 2);
}

TEST(LookupJoinTest, DeadLetterOutputGetsRowsOfFailedLookups) {
  REQUIRE_POSTGRES();
  LookupJoinOptions o = Options("lj_dead_letter_missing");
  o.on_error = "dead_letter";
  o.max_retries = 0;
  JobOptions options;
  options.parallelism = 1;
  auto env = StreamEnvironment::Make(options);
  auto input = Orders({1, 2, 3, 4}, 0);
  auto joined = env->FromBatches(input->schema(), {input}).LookupJoin(o);
  auto main = joined.Collect();
  auto errors = joined.SideOutput(kLookupErrorsTag).Collect();
  ASSERT_TRUE(env->Execute().ok());
  EXPECT_EQ(main->num_rows(), 0);
  ASSERT_EQ(errors->num_rows(), 4);
  auto batch = errors->batches()[0];
  auto error =
      std::static_pointer_cast<arrow::StringArray>(batch->GetColumnByName("error"));
  EXPECT_NE(error->GetString(0).find("lj_dead_letter_missing"), std::string::npos);
  EXPECT_EQ(o.stats->failed_batches.load(), 1);
}

TEST(LookupJoinTest, CacheTtlExpiresEntries) {
  REQUIRE_POSTGRES();
  CreateCustomers("lj_ttl", 10);
  // Drives the operator directly (no async notifier: it works synchronously).
  LookupJoinOptions options = Options("lj_ttl");
  options.cache_ttl_ms = 1;
  PlanNode node;
  node.kind = "lookup_join";
  node.name = "lookup_join#1";
  node.options = std::make_shared<LookupJoinOptions>(options);
  auto op = OperatorRegistry::Global()->MakeOperator(node, 0, 1).ValueOrDie();
  OperatorContext ctx;
  ctx.operator_name = node.name;
  struct Sink : Collector {
    int64_t rows = 0;
    arrow::Status Emit(std::shared_ptr<arrow::RecordBatch> b) override {
      rows += b->num_rows();
      return arrow::Status::OK();
    }
    arrow::Status EmitWatermark(int64_t) override { return arrow::Status::OK(); }
  } out;
  ASSERT_TRUE(op->Open(&ctx).ok());
  ASSERT_TRUE(op->ProcessBatch(0, Orders({1, 2}, 0), &ctx, &out).ok());
  EXPECT_EQ(options.stats->queries.load(), 1);
  // Past the TTL the same keys are looked up again.
  const int64_t loaded = WallClockMillis();
  while (WallClockMillis() <= loaded + 1) std::this_thread::yield();
  ASSERT_TRUE(op->ProcessBatch(0, Orders({1, 2}, 2), &ctx, &out).ok());
  EXPECT_EQ(options.stats->queries.load(), 2);
  EXPECT_EQ(options.stats->cache_hits.load(), 0);
  ASSERT_TRUE(op->Close(&ctx, &out).ok());
  EXPECT_EQ(out.rows, 4);
}

// An AsyncNotifier that only counts: results are taken by the test.
struct CountingNotifier : AsyncNotifier {
  std::atomic<int> count{0};
  void Notify() override { count.fetch_add(1); }
};

TEST(LookupJoinTest, PendingInputIsCheckpointedAndLookedUpAgainOnRestore) {
  REQUIRE_POSTGRES();
  CreateCustomers("lj_restore", 50);
  LookupJoinOptions options = Options("lj_restore");
  options.type = JoinType::kLeft;
  options.cache_max_entries = 0;
  PlanNode node;
  node.kind = "lookup_join";
  node.name = "lookup_join#1";
  node.options = std::make_shared<LookupJoinOptions>(options);
  struct Sink : Collector {
    std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
    arrow::Status Emit(std::shared_ptr<arrow::RecordBatch> b) override {
      batches.push_back(std::move(b));
      return arrow::Status::OK();
    }
    arrow::Status EmitWatermark(int64_t) override { return arrow::Status::OK(); }
  };

  MemorySnapshot snapshot(1);
  {
    auto op = OperatorRegistry::Global()->MakeOperator(node, 0, 1).ValueOrDie();
    OperatorContext ctx;
    ctx.operator_name = node.name;
    auto notifier = std::make_shared<CountingNotifier>();
    ctx.async_notifier = notifier;
    Sink out;
    ASSERT_TRUE(op->Open(&ctx).ok());
    ASSERT_TRUE(op->ProcessBatch(0, Orders({1, 2, 3}, 0), &ctx, &out).ok());
    ASSERT_TRUE(op->ProcessBatch(0, Orders({4, 5}, 3), &ctx, &out).ok());
    EXPECT_TRUE(op->HasPendingWork());  // nothing is emitted before OnAsyncReady
    EXPECT_TRUE(out.batches.empty());
    auto writer = snapshot.Writer(node.name, 0, 1);
    ASSERT_TRUE(op->SnapshotState(writer.get(), &ctx).ok());
    // The operator is dropped with its lookups in flight (a failure).
  }
  // Restore at parallelism 2: the pending batches are shared out and emitted.
  std::set<int64_t> orders;
  for (int i = 0; i < 2; ++i) {
    auto op = OperatorRegistry::Global()->MakeOperator(node, i, 2).ValueOrDie();
    OperatorContext ctx;
    ctx.operator_name = node.name;
    ctx.instance_index = i;
    ctx.parallelism = 2;
    auto reader = snapshot.Reader(node.name, i, 2);
    ctx.restore = reader.get();
    Sink out;
    ASSERT_TRUE(op->Open(&ctx).ok());
    ctx.restore = nullptr;
    ASSERT_TRUE(op->Close(&ctx, &out).ok());  // drains what was restored
    for (const auto& b : out.batches) {
      auto col = std::static_pointer_cast<arrow::Int64Array>(b->GetColumnByName("order"));
      for (int64_t r = 0; r < b->num_rows(); ++r) orders.insert(col->Value(r));
    }
  }
  EXPECT_EQ(orders, (std::set<int64_t>{0, 1, 2, 3, 4}));
}

}  // namespace
}  // namespace sabot
