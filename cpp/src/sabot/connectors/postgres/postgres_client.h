// A thin layer over libpq: connections, statements, table descriptions and
// binary-format results turned into Arrow batches. Used by the PostgreSQL
// lookup table (postgres_table.h) and the Python admin helpers.
//
/// Threading contract: a PGconn is used by one thread at a time (libpq's rule);
/// the helpers are stateless. Errors: IOError ending in "(retryable)" when the
/// server cannot be reached or the connection broke (a reconnect may help);
/// Invalid / TypeError for SQL errors, unknown tables or columns and types.
#pragma once

#include <arrow/record_batch.h>
#include <arrow/result.h>
#include <arrow/status.h>
#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sabot::postgres {

struct ConnectionDeleter {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
using Connection = std::unique_ptr<PGconn, ConnectionDeleter>;

struct ResultDeleter {
  void operator()(PGresult* result) const { PQclear(result); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

/// "host:port/dbname" of a libpq connection string or URI, for messages (never
/// the password); the string itself when it does not parse.
std::string DescribeDsn(const std::string& dsn);

/// Connects to `dsn` (a libpq key=value string or postgresql:// URI;
/// connect_timeout defaults to 10 s). `context` starts error messages.
arrow::Result<Connection> Connect(const std::string& dsn, const std::string& context);

/// Whether a server answers at `dsn` (a connection attempt, closed at once).
bool ServerAvailable(const std::string& dsn);

/// The Status for a failed statement (its SQLSTATE decides retryable or not).
arrow::Status ResultStatus(PGconn* conn, const PGresult* result,
                           const std::string& context);

/// Runs `sql` (one or more statements, no parameters) and returns the last
/// result; an error names `context` and carries the server's message.
arrow::Result<Result> Execute(PGconn* conn, const std::string& sql,
                              const std::string& context);

/// `name` quoted as an SQL identifier ("a""b").
std::string QuoteIdentifier(const std::string& name);

/// A column of a PostgreSQL table and how it is read into Arrow.
struct ColumnInfo {
  std::string name;
  uint32_t type_oid = 0;
  std::string type_name;  ///< format_type with modifiers, e.g. "numeric(10,2)"
  std::string base_type;  ///< format_type without modifiers, e.g. "numeric"
  std::shared_ptr<arrow::DataType> arrow_type;
  /// Read as text (the SELECT casts it with ::text) and parsed, instead of the
  /// binary wire format (numeric, uuid, jsonb and types without a mapping).
  bool as_text = false;
};

/// A table: its name as SQL text (quoted, schema-qualified when needed) and
/// its columns in table order.
struct TableInfo {
  std::string sql_name;
  std::vector<ColumnInfo> columns;
};

/// Describes `table` (optionally schema-qualified, resolved like SQL does:
/// unquoted names fold to lower case). KeyError names the table when it does
/// not exist.
arrow::Result<TableInfo> DescribeTable(PGconn* conn, const std::string& table,
                                       const std::string& context);

/// The SELECT-list expression for `column`: the quoted name, with ::text for
/// columns read as text.
std::string SelectExpression(const ColumnInfo& column);

/// Converts a result in binary format whose columns are `columns` (as selected
/// by SelectExpression) into one Arrow batch.
arrow::Result<std::shared_ptr<arrow::RecordBatch>> ResultToBatch(
    const PGresult* result, const std::vector<ColumnInfo>& columns,
    arrow::MemoryPool* pool, const std::string& context);

/// Appends `values` (non-null rows only) as the text form of a PostgreSQL array
/// literal, e.g. {1,2} or {"a","b\"c"}, for a parameter like $1::int8[].
/// Integer, bool and string columns; NotImplemented names `what` otherwise.
arrow::Status AppendArrayLiteral(const arrow::Array& values, std::string* out,
                                 const std::string& what);

}  // namespace sabot::postgres
