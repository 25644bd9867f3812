// Python bindings of the lookup join against PostgreSQL tables and of the small
// PostgreSQL helpers tests, examples and benchmarks use (python/sabot/lookup.py).
#include "sabot/python/lookup_bindings.h"

#include <arrow/c/abi.h>
#include <arrow/c/bridge.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "sabot/api/datastream.h"
#include "sabot/connectors/postgres/postgres_client.h"
#include "sabot/connectors/postgres/postgres_table.h"
#include "sabot/python/binding_util.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace sabot {
namespace {

using py::Check;
using py::TableFromStreamCapsule;
using py::Unwrap;

template <typename T>
T Get(const nb::dict& d, const char* key, T fallback) {
  return d.contains(key) && !d[key].is_none() ? nb::cast<T>(d[key]) : fallback;
}

nb::dict StatsToDict(const LookupJoinStats& s) {
  nb::dict d;
  d["cache_hits"] = s.cache_hits.load();
  d["cache_misses"] = s.cache_misses.load();
  d["inflight_waits"] = s.inflight_waits.load();
  d["queries"] = s.queries.load();
  d["keys_queried"] = s.keys_queried.load();
  d["rows_fetched"] = s.rows_fetched.load();
  d["query_ms"] = static_cast<double>(s.query_ns.load()) / 1e6;
  d["retries"] = s.retries.load();
  d["failed_batches"] = s.failed_batches.load();
  d["cache_entries"] = s.cache_entries.load();
  d["cache_evictions"] = s.cache_evictions.load();
  return d;
}

}  // namespace

void RegisterLookupBindings(nb::module_& m) {
  nb::class_<LookupJoinStats>(m, "LookupJoinStats").def("snapshot", &StatsToDict);

  m.def(
      "postgres_lookup_join",
      [](const DataStream& stream, nb::dict d) {
        postgres::PostgresTableOptions t;
        t.dsn = Get<std::string>(d, "dsn", "");
        t.table = Get<std::string>(d, "table", "");
        t.key_columns = Get<std::vector<std::string>>(d, "table_keys", {});
        t.columns = Get<std::vector<std::string>>(d, "columns", {});
        if (t.dsn.empty() || t.table.empty() || t.key_columns.empty()) {
          throw nb::value_error("postgres_table needs a dsn, a table and key columns");
        }
        LookupJoinOptions o;
        o.table = postgres::MakePostgresLookupTable(std::move(t));
        o.keys = Get<std::vector<std::string>>(d, "keys", {});
        o.type = Unwrap(JoinTypeFromString(Get<std::string>(d, "how", "inner")));
        o.cache_max_entries = Get<int64_t>(d, "cache_max_entries", o.cache_max_entries);
        o.cache_ttl_ms = Get<int64_t>(d, "cache_ttl_ms", 0);
        o.max_in_flight = Get<int>(d, "max_in_flight", o.max_in_flight);
        o.ordered = Get<bool>(d, "ordered", true);
        o.connections = Get<int>(d, "connections", 1);
        o.max_retries = Get<int>(d, "max_retries", o.max_retries);
        o.retry_backoff_ms = Get<int64_t>(d, "retry_backoff_ms", o.retry_backoff_ms);
        o.on_error = Get<std::string>(d, "on_error", "fail");
        Check(o.Validate());
        auto stats = o.stats;
        DataStream joined = stream.LookupJoin(std::move(o), Get<bool>(d, "key_by", true));
        return std::make_pair(joined, stats);
      },
      "stream"_a, "options"_a);

  m.def(
      "postgres_execute",
      [](std::string dsn, std::string sql) {
        arrow::Result<int64_t> r;
        {
          nb::gil_scoped_release release;
          r = postgres::ExecuteSql(dsn, sql);
        }
        return Unwrap(std::move(r));
      },
      "dsn"_a, "sql"_a);
  m.def(
      "postgres_load",
      [](std::string dsn, std::string name, nb::object stream_capsule,
         std::vector<std::string> primary_key, bool replace) {
        auto table = TableFromStreamCapsule(stream_capsule);
        arrow::Result<int64_t> r;
        {
          nb::gil_scoped_release release;
          r = postgres::LoadTable(dsn, name, *table, primary_key, replace);
        }
        return Unwrap(std::move(r));
      },
      "dsn"_a, "name"_a, "stream_capsule"_a, "primary_key"_a, "replace"_a);
  m.def(
      "postgres_available",
      [](std::string dsn) {
        nb::gil_scoped_release release;
        return postgres::ServerAvailable(dsn);
      },
      "dsn"_a);
}

}  // namespace sabot
