#include "sabot/connectors/postgres/postgres_table.h"

#include <arrow/csv/writer.h>
#include <arrow/io/memory.h>

#include <mutex>
#include <sstream>

#include "sabot/connectors/postgres/postgres_client.h"

namespace sabot::postgres {

namespace {

bool IsIntegerType(const arrow::DataType& t) { return arrow::is_integer(t.id()); }

bool IsStringType(const arrow::DataType& t) {
  return t.id() == arrow::Type::STRING || t.id() == arrow::Type::LARGE_STRING ||
         t.id() == arrow::Type::STRING_VIEW;
}

class PostgresClient : public LookupClient {
 public:
  PostgresClient(const PostgresTableOptions& options, arrow::MemoryPool* pool)
      : options_(options), pool_(pool) {
    context_ = "postgres table '" + options_.table + "' at " + DescribeDsn(options_.dsn);
  }

  ~PostgresClient() override {
    std::lock_guard<std::mutex> lock(cancel_mutex_);
    if (cancel_) PQfreeCancel(cancel_);
    cancel_ = nullptr;
  }

  arrow::Result<std::shared_ptr<arrow::Schema>> Connect() override {
    ARROW_ASSIGN_OR_RAISE(conn_, postgres::Connect(options_.dsn, context_));
    {
      std::lock_guard<std::mutex> lock(cancel_mutex_);
      cancel_ = PQgetCancel(conn_.get());
    }
    ARROW_ASSIGN_OR_RAISE(TableInfo info,
                          DescribeTable(conn_.get(), options_.table, context_));
    auto find = [&](const std::string& name) -> arrow::Result<ColumnInfo> {
      for (const auto& c : info.columns) {
        if (c.name == name) return c;
      }
      std::string names;
      for (const auto& c : info.columns) names += (names.empty() ? "" : ", ") + c.name;
      return arrow::Status::KeyError(context_, ": no column '", name,
                                     "' (columns: ", names, ")");
    };
    selected_.clear();
    for (const auto& k : options_.key_columns) {
      ARROW_ASSIGN_OR_RAISE(auto c, find(k));
      selected_.push_back(std::move(c));
    }
    if (options_.columns.empty()) {
      for (const auto& c : info.columns) {
        bool is_key = false;
        for (const auto& k : options_.key_columns) is_key |= c.name == k;
        if (!is_key) selected_.push_back(c);
      }
    } else {
      for (const auto& name : options_.columns) {
        ARROW_ASSIGN_OR_RAISE(auto c, find(name));
        selected_.push_back(std::move(c));
      }
    }
    // The statement: distinct keys in one array parameter per key column.
    std::ostringstream sql;
    sql << "SELECT ";
    for (size_t i = 0; i < selected_.size(); ++i) {
      sql << (i ? ", " : "") << SelectExpression(selected_[i]);
    }
    sql << " FROM " << info.sql_name << " WHERE ";
    const size_t nk = options_.key_columns.size();
    if (nk == 1) {
      sql << QuoteIdentifier(selected_[0].name) << " = ANY($1::" << selected_[0].base_type
          << "[])";
    } else {
      sql << "(";
      for (size_t k = 0; k < nk; ++k) {
        sql << (k ? ", " : "") << QuoteIdentifier(selected_[k].name);
      }
      sql << ") IN (SELECT * FROM unnest(";
      for (size_t k = 0; k < nk; ++k) {
        sql << (k ? ", " : "") << "$" << k + 1 << "::" << selected_[k].base_type << "[]";
      }
      sql << "))";
    }
    sql_ = sql.str();
    Result prepared(PQprepare(conn_.get(), "sabot_lookup", sql_.c_str(),
                              static_cast<int>(nk), nullptr));
    ARROW_RETURN_NOT_OK(ResultStatus(conn_.get(), prepared.get(),
                                     context_ + ": preparing '" + sql_ + "'"));
    arrow::FieldVector fields;
    for (const auto& c : selected_) fields.push_back(arrow::field(c.name, c.arrow_type));
    return arrow::schema(std::move(fields));
  }

  arrow::Status CheckKeyTypes(const std::vector<std::shared_ptr<arrow::DataType>>& types,
                              const std::vector<std::string>& stream_keys) override {
    for (size_t k = 0; k < types.size() && k < selected_.size(); ++k) {
      const auto& stream = *types[k];
      const ColumnInfo& column = selected_[k];
      const auto& table = *column.arrow_type;
      bool ok = false;
      if (IsIntegerType(stream)) {
        ok = IsIntegerType(table);
      } else if (IsStringType(stream)) {
        ok = table.id() == arrow::Type::STRING;
      } else if (stream.id() == arrow::Type::BOOL) {
        ok = table.id() == arrow::Type::BOOL;
      } else {
        return arrow::Status::NotImplemented(
            context_, ": the stream's key column '", stream_keys[k], "' is ",
            stream.ToString(), "; lookup keys must be integers, strings or bool");
      }
      if (!ok) {
        return arrow::Status::TypeError(
            context_, ": key column '", column.name, "' is ", column.type_name,
            " but the stream's key column '", stream_keys[k], "' is ", stream.ToString());
      }
    }
    return arrow::Status::OK();
  }

  arrow::Result<std::shared_ptr<arrow::RecordBatch>> Lookup(
      const std::vector<std::shared_ptr<arrow::Array>>& keys) override {
    std::vector<std::string> params(keys.size());
    std::vector<const char*> values(keys.size());
    for (size_t k = 0; k < keys.size(); ++k) {
      ARROW_RETURN_NOT_OK(AppendArrayLiteral(*keys[k], &params[k], context_));
      values[k] = params[k].c_str();
    }
    Result result(PQexecPrepared(conn_.get(), "sabot_lookup",
                                 static_cast<int>(values.size()), values.data(), nullptr,
                                 nullptr, /*resultFormat=*/1));
    ARROW_RETURN_NOT_OK(ResultStatus(conn_.get(), result.get(), context_ + ": lookup"));
    return ResultToBatch(result.get(), selected_, pool_, context_);
  }

  void Cancel() override {
    std::lock_guard<std::mutex> lock(cancel_mutex_);
    if (cancel_) {
      char err[256];
      PQcancel(cancel_, err, sizeof(err));
    }
  }

 private:
  PostgresTableOptions options_;
  arrow::MemoryPool* pool_;
  std::string context_;
  Connection conn_;
  std::vector<ColumnInfo> selected_;  // key columns, then value columns
  std::string sql_;
  std::mutex cancel_mutex_;
  PGcancel* cancel_ = nullptr;
};

class PostgresLookupTable : public LookupTable {
 public:
  explicit PostgresLookupTable(PostgresTableOptions options)
      : options_(std::move(options)) {}

  arrow::Result<std::unique_ptr<LookupClient>> MakeClient(
      arrow::MemoryPool* pool) const override {
    return std::make_unique<PostgresClient>(options_, pool);
  }
  std::vector<std::string> key_columns() const override { return options_.key_columns; }
  std::string ToString() const override {
    return "postgres table '" + options_.table + "' at " + DescribeDsn(options_.dsn);
  }

 private:
  PostgresTableOptions options_;
};

// The PostgreSQL column type for an Arrow type.
arrow::Result<std::string> SqlType(const arrow::DataType& type,
                                   const std::string& column) {
  switch (type.id()) {
    case arrow::Type::BOOL:
      return "boolean";
    case arrow::Type::INT8:
    case arrow::Type::INT16:
    case arrow::Type::UINT8:
      return "smallint";
    case arrow::Type::INT32:
    case arrow::Type::UINT16:
      return "integer";
    case arrow::Type::INT64:
    case arrow::Type::UINT32:
      return "bigint";
    case arrow::Type::UINT64:
      return "numeric(20,0)";
    case arrow::Type::FLOAT:
      return "real";
    case arrow::Type::DOUBLE:
      return "double precision";
    case arrow::Type::STRING:
    case arrow::Type::LARGE_STRING:
    case arrow::Type::STRING_VIEW:
      return "text";
    case arrow::Type::DATE32:
    case arrow::Type::DATE64:
      return "date";
    case arrow::Type::TIMESTAMP:
      return static_cast<const arrow::TimestampType&>(type).timezone().empty()
                 ? "timestamp"
                 : "timestamptz";
    case arrow::Type::DECIMAL128: {
      const auto& d = static_cast<const arrow::Decimal128Type&>(type);
      return "numeric(" + std::to_string(d.precision()) + "," +
             std::to_string(d.scale()) + ")";
    }
    default:
      return arrow::Status::NotImplemented("column '", column, "' of type ",
                                           type.ToString(),
                                           " cannot be loaded into PostgreSQL");
  }
}

}  // namespace

std::shared_ptr<LookupTable> MakePostgresLookupTable(PostgresTableOptions options) {
  return std::make_shared<PostgresLookupTable>(std::move(options));
}

arrow::Result<int64_t> ExecuteSql(const std::string& dsn, const std::string& sql) {
  const std::string context = "PostgreSQL at " + DescribeDsn(dsn);
  ARROW_ASSIGN_OR_RAISE(auto conn, Connect(dsn, context));
  ARROW_ASSIGN_OR_RAISE(auto result, Execute(conn.get(), sql, context));
  if (PQresultStatus(result.get()) == PGRES_TUPLES_OK) return PQntuples(result.get());
  const char* affected = PQcmdTuples(result.get());
  return affected && *affected ? std::stoll(affected) : 0;
}

arrow::Result<int64_t> LoadTable(const std::string& dsn, const std::string& name,
                                 const arrow::Table& table,
                                 const std::vector<std::string>& primary_key,
                                 bool replace) {
  const std::string context =
      "loading PostgreSQL table '" + name + "' at " + DescribeDsn(dsn);
  ARROW_ASSIGN_OR_RAISE(auto conn, Connect(dsn, context));
  std::ostringstream ddl;
  if (replace) ddl << "DROP TABLE IF EXISTS " << QuoteIdentifier(name) << "; ";
  ddl << "CREATE TABLE " << QuoteIdentifier(name) << " (";
  std::ostringstream columns;
  for (int i = 0; i < table.num_columns(); ++i) {
    const auto& f = table.schema()->field(i);
    ARROW_ASSIGN_OR_RAISE(auto type, SqlType(*f->type(), f->name()));
    ddl << (i ? ", " : "") << QuoteIdentifier(f->name()) << " " << type;
    columns << (i ? ", " : "") << QuoteIdentifier(f->name());
  }
  if (!primary_key.empty()) {
    ddl << ", PRIMARY KEY (";
    for (size_t i = 0; i < primary_key.size(); ++i) {
      ddl << (i ? ", " : "") << QuoteIdentifier(primary_key[i]);
    }
    ddl << ")";
  }
  ddl << ")";
  ARROW_RETURN_NOT_OK(Execute(conn.get(), ddl.str(), context).status());

  // Arrow writes the CSV (quoting strings, nulls as empty unquoted fields,
  // which is PostgreSQL's CSV null).
  ARROW_ASSIGN_OR_RAISE(auto sink, arrow::io::BufferOutputStream::Create());
  auto write_options = arrow::csv::WriteOptions::Defaults();
  write_options.include_header = false;
  ARROW_RETURN_NOT_OK(arrow::csv::WriteCSV(table, write_options, sink.get()));
  ARROW_ASSIGN_OR_RAISE(auto csv, sink->Finish());

  std::string copy = "COPY " + QuoteIdentifier(name) + " (" + columns.str() +
                     ") FROM STDIN WITH (FORMAT csv)";
  Result started(PQexec(conn.get(), copy.c_str()));
  if (PQresultStatus(started.get()) != PGRES_COPY_IN) {
    return ResultStatus(conn.get(), started.get(), context);
  }
  constexpr int64_t kChunk = 1 << 20;
  for (int64_t offset = 0; offset < csv->size(); offset += kChunk) {
    const int len = static_cast<int>(std::min(kChunk, csv->size() - offset));
    if (PQputCopyData(conn.get(), reinterpret_cast<const char*>(csv->data()) + offset,
                      len) != 1) {
      return arrow::Status::IOError(context, ": ", PQerrorMessage(conn.get()));
    }
  }
  if (PQputCopyEnd(conn.get(), nullptr) != 1) {
    return arrow::Status::IOError(context, ": ", PQerrorMessage(conn.get()));
  }
  Result finished(PQgetResult(conn.get()));
  ARROW_RETURN_NOT_OK(ResultStatus(conn.get(), finished.get(), context));
  while (PGresult* rest = PQgetResult(conn.get())) PQclear(rest);
  ARROW_RETURN_NOT_OK(
      Execute(conn.get(), "ANALYZE " + QuoteIdentifier(name), context).status());
  return table.num_rows();
}

}  // namespace sabot::postgres
