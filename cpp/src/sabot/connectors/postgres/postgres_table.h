// A PostgreSQL table as the table of a lookup join (operators/lookup_join.h),
// and helpers that load Arrow data into PostgreSQL (tests, examples, benchmarks).
//
// Each lookup is one prepared statement per connection:
//   SELECT k, v1, v2 FROM t WHERE k = ANY($1::<type of k>[])
// (several key columns: WHERE (k1, k2) IN (SELECT * FROM unnest($1, $2))),
// with the distinct keys as one text-format array parameter per key column and
// the rows returned in libpq's binary format, converted column by column into
// Arrow (type mapping: docs/lookup_join.md).
#pragma once

#include <arrow/table.h>

#include <memory>
#include <string>
#include <vector>

#include "sabot/operators/lookup_join.h"

namespace sabot::postgres {

struct PostgresTableOptions {
  /// libpq connection string or URI, e.g. "host=127.0.0.1 port=15432
  /// user=sabot dbname=sabot".
  std::string dsn;
  /// Table (or view) name, optionally schema-qualified.
  std::string table;
  /// Key columns of the table, matched against the stream's key columns.
  std::vector<std::string> key_columns;
  /// Columns to fetch; empty: every column except the key columns.
  std::vector<std::string> columns;
};

/// The lookup table (connections are made by the lookup threads, not here).
std::shared_ptr<LookupTable> MakePostgresLookupTable(PostgresTableOptions options);

/// Runs `sql` at `dsn`; returns the number of rows it affected (or returned).
arrow::Result<int64_t> ExecuteSql(const std::string& dsn, const std::string& sql);

/// Creates table `name` from `table`'s schema (dropping it first when
/// `replace`) with `primary_key` (may be empty), then copies the rows in with
/// COPY ... FROM STDIN (CSV). Returns the number of rows copied.
arrow::Result<int64_t> LoadTable(const std::string& dsn, const std::string& name,
                                 const arrow::Table& table,
                                 const std::vector<std::string>& primary_key,
                                 bool replace);

}  // namespace sabot::postgres
