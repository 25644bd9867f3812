#include "sabot/connectors/postgres/postgres_client.h"

#include <arrow/array/builder_binary.h>
#include <arrow/array/builder_decimal.h>
#include <arrow/array/builder_primitive.h>
#include <arrow/builder.h>
#include <arrow/util/decimal.h>
#include <arrow/util/endian.h>

#include <charconv>
#include <cstring>
#include <string_view>

namespace sabot::postgres {

namespace {

// Type oids (pg_type.dat); stable across PostgreSQL versions.
constexpr uint32_t kBoolOid = 16;
constexpr uint32_t kByteaOid = 17;
constexpr uint32_t kNameOid = 19;
constexpr uint32_t kInt8Oid = 20;
constexpr uint32_t kInt2Oid = 21;
constexpr uint32_t kInt4Oid = 23;
constexpr uint32_t kTextOid = 25;
constexpr uint32_t kOidOid = 26;
constexpr uint32_t kJsonOid = 114;
constexpr uint32_t kFloat4Oid = 700;
constexpr uint32_t kFloat8Oid = 701;
constexpr uint32_t kBpcharOid = 1042;
constexpr uint32_t kVarcharOid = 1043;
constexpr uint32_t kDateOid = 1082;
constexpr uint32_t kTimeOid = 1083;
constexpr uint32_t kTimestampOid = 1114;
constexpr uint32_t kTimestamptzOid = 1184;
constexpr uint32_t kNumericOid = 1700;

// PostgreSQL's epoch (2000-01-01) relative to the Unix epoch.
constexpr int32_t kEpochDays = 10957;
constexpr int64_t kEpochMicros = 946684800LL * 1000000LL;

template <typename T>
T ReadBigEndian(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return arrow::bit_util::FromBigEndian(v);
}

// Retryable SQLSTATE classes: connection exceptions, operator intervention
// (shutdown), insufficient resources, transaction rollbacks (serialization).
bool RetryableSqlState(const char* state) {
  if (state == nullptr || std::strlen(state) < 2) return false;
  std::string_view c(state, 2);
  return c == "08" || c == "57" || c == "53" || c == "40";
}

std::string TrimMessage(const char* msg) {
  std::string s = msg ? msg : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// The Arrow type and read mode of a PostgreSQL type.
void MapType(ColumnInfo* c, int32_t typmod) {
  switch (c->type_oid) {
    case kBoolOid:
      c->arrow_type = arrow::boolean();
      return;
    case kInt2Oid:
      c->arrow_type = arrow::int16();
      return;
    case kInt4Oid:
      c->arrow_type = arrow::int32();
      return;
    case kInt8Oid:
    case kOidOid:
      c->arrow_type = arrow::int64();
      return;
    case kFloat4Oid:
      c->arrow_type = arrow::float32();
      return;
    case kFloat8Oid:
      c->arrow_type = arrow::float64();
      return;
    case kTextOid:
    case kVarcharOid:
    case kBpcharOid:
    case kNameOid:
    case kJsonOid:
      c->arrow_type = arrow::utf8();
      return;
    case kByteaOid:
      c->arrow_type = arrow::binary();
      return;
    case kDateOid:
      c->arrow_type = arrow::date32();
      return;
    case kTimeOid:
      c->arrow_type = arrow::time64(arrow::TimeUnit::MICRO);
      return;
    case kTimestampOid:
      c->arrow_type = arrow::timestamp(arrow::TimeUnit::MICRO);
      return;
    case kTimestamptzOid:
      c->arrow_type = arrow::timestamp(arrow::TimeUnit::MICRO, "UTC");
      return;
    case kNumericOid: {
      c->as_text = true;
      // numeric(p, s): typmod = ((p << 16) | s) + 4; bare numeric: -1.
      if (typmod >= 4) {
        int32_t precision = ((typmod - 4) >> 16) & 0xffff;
        int32_t scale = (typmod - 4) & 0xffff;
        if (precision >= 1 && precision <= 38 && scale <= precision) {
          c->arrow_type = arrow::decimal128(precision, scale);
          return;
        }
      }
      c->arrow_type = arrow::utf8();  // unbounded numeric: its exact text
      return;
    }
    default:
      // uuid, jsonb, arrays, enums, ...: their text form.
      c->as_text = true;
      c->arrow_type = arrow::utf8();
      return;
  }
}

}  // namespace

std::string DescribeDsn(const std::string& dsn) {
  char* err = nullptr;
  PQconninfoOption* options = PQconninfoParse(dsn.c_str(), &err);
  if (options == nullptr) {
    if (err) PQfreemem(err);
    return dsn;
  }
  std::string host = "localhost", port = "5432", db;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val == nullptr || *o->val == '\0') continue;
    std::string k = o->keyword;
    if (k == "host" || k == "hostaddr") host = o->val;
    if (k == "port") port = o->val;
    if (k == "dbname") db = o->val;
  }
  PQconninfoFree(options);
  return host + ":" + port + "/" + db;
}

arrow::Result<Connection> Connect(const std::string& dsn, const std::string& context) {
  // Defaults first: the DSN (expanded from dbname) overrides them.
  const char* keywords[] = {"connect_timeout", "application_name", "dbname", nullptr};
  const char* values[] = {"10", "sabot", dsn.c_str(), nullptr};
  Connection conn(PQconnectdbParams(keywords, values, /*expand_dbname=*/1));
  if (!conn) {
    return arrow::Status::OutOfMemory(context, ": libpq could not allocate a connection");
  }
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    return arrow::Status::IOError(
        context, ": cannot connect to PostgreSQL at ", DescribeDsn(dsn), ": ",
        TrimMessage(PQerrorMessage(conn.get())), " (retryable)");
  }
  // Server notices ("table does not exist, skipping") are not errors.
  PQsetNoticeProcessor(
      conn.get(), [](void*, const char*) {}, nullptr);
  return conn;
}

bool ServerAvailable(const std::string& dsn) {
  const char* keywords[] = {"connect_timeout", "dbname", nullptr};
  const char* values[] = {"3", dsn.c_str(), nullptr};
  Connection conn(PQconnectdbParams(keywords, values, 1));
  return conn && PQstatus(conn.get()) == CONNECTION_OK;
}

arrow::Status ResultStatus(PGconn* conn, const PGresult* result,
                           const std::string& context) {
  ExecStatusType st = result ? PQresultStatus(result) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY) {
    return arrow::Status::OK();
  }
  std::string msg = TrimMessage(result ? PQresultErrorMessage(result) : nullptr);
  if (msg.empty()) msg = TrimMessage(PQerrorMessage(conn));
  const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  if (PQstatus(conn) != CONNECTION_OK || RetryableSqlState(state)) {
    return arrow::Status::IOError(context, ": ", msg, " (retryable)");
  }
  if (state != nullptr) {
    return arrow::Status::Invalid(context, ": ", msg, " (SQLSTATE ", state, ")");
  }
  return arrow::Status::Invalid(context, ": ", msg);
}

arrow::Result<Result> Execute(PGconn* conn, const std::string& sql,
                              const std::string& context) {
  Result result(PQexec(conn, sql.c_str()));
  ARROW_RETURN_NOT_OK(ResultStatus(conn, result.get(), context));
  return result;
}

std::string QuoteIdentifier(const std::string& name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

arrow::Result<TableInfo> DescribeTable(PGconn* conn, const std::string& table,
                                       const std::string& context) {
  const char* sql =
      "SELECT a.attname, a.atttypid, a.atttypmod, format_type(a.atttypid, a.atttypmod), "
      "format_type(a.atttypid, NULL), a.attrelid::regclass::text FROM pg_attribute a "
      "WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped "
      "ORDER BY a.attnum";
  const char* params[] = {table.c_str()};
  Result result(PQexecParams(conn, sql, 1, nullptr, params, nullptr, nullptr, 0));
  ARROW_RETURN_NOT_OK(ResultStatus(conn, result.get(), context));
  const int n = PQntuples(result.get());
  if (n == 0) {
    return arrow::Status::KeyError(context, ": PostgreSQL table '", table,
                                   "' does not exist (or has no columns) in database '",
                                   PQdb(conn), "'");
  }
  TableInfo info;
  info.sql_name = PQgetvalue(result.get(), 0, 5);
  for (int i = 0; i < n; ++i) {
    ColumnInfo c;
    c.name = PQgetvalue(result.get(), i, 0);
    c.type_oid = static_cast<uint32_t>(std::stoul(PQgetvalue(result.get(), i, 1)));
    int32_t typmod = std::stoi(PQgetvalue(result.get(), i, 2));
    c.type_name = PQgetvalue(result.get(), i, 3);
    c.base_type = PQgetvalue(result.get(), i, 4);
    MapType(&c, typmod);
    info.columns.push_back(std::move(c));
  }
  return info;
}

std::string SelectExpression(const ColumnInfo& column) {
  std::string q = QuoteIdentifier(column.name);
  return column.as_text ? q + "::text" : q;
}

namespace {

// Appends the binary value of one cell to `builder` (of column.arrow_type).
arrow::Status AppendCell(const ColumnInfo& column, const char* p, int len,
                         arrow::ArrayBuilder* builder, const std::string& context) {
  auto bad_length = [&]() {
    return arrow::Status::Invalid(context, ": unexpected ", len,
                                  "-byte binary value for column '", column.name,
                                  "' of type ", column.type_name);
  };
  if (column.as_text) {
    std::string_view text(p, static_cast<size_t>(len));
    if (column.arrow_type->id() == arrow::Type::DECIMAL128) {
      const auto& type = static_cast<const arrow::Decimal128Type&>(*column.arrow_type);
      arrow::Decimal128 value;
      int32_t precision = 0, scale = 0;
      ARROW_RETURN_NOT_OK(
          arrow::Decimal128::FromString(text, &value, &precision, &scale));
      if (scale != type.scale()) {
        ARROW_ASSIGN_OR_RAISE(value, value.Rescale(scale, type.scale()));
      }
      return static_cast<arrow::Decimal128Builder*>(builder)->Append(value);
    }
    return static_cast<arrow::StringBuilder*>(builder)->Append(text);
  }
  switch (column.type_oid) {
    case kBoolOid:
      if (len != 1) return bad_length();
      return static_cast<arrow::BooleanBuilder*>(builder)->Append(*p != 0);
    case kInt2Oid:
      if (len != 2) return bad_length();
      return static_cast<arrow::Int16Builder*>(builder)->Append(
          ReadBigEndian<int16_t>(p));
    case kInt4Oid:
      if (len != 4) return bad_length();
      return static_cast<arrow::Int32Builder*>(builder)->Append(
          ReadBigEndian<int32_t>(p));
    case kOidOid:
      if (len != 4) return bad_length();
      return static_cast<arrow::Int64Builder*>(builder)->Append(
          ReadBigEndian<uint32_t>(p));
    case kInt8Oid:
      if (len != 8) return bad_length();
      return static_cast<arrow::Int64Builder*>(builder)->Append(
          ReadBigEndian<int64_t>(p));
    case kFloat4Oid: {
      if (len != 4) return bad_length();
      uint32_t bits = ReadBigEndian<uint32_t>(p);
      float v;
      std::memcpy(&v, &bits, 4);
      return static_cast<arrow::FloatBuilder*>(builder)->Append(v);
    }
    case kFloat8Oid: {
      if (len != 8) return bad_length();
      uint64_t bits = ReadBigEndian<uint64_t>(p);
      double v;
      std::memcpy(&v, &bits, 8);
      return static_cast<arrow::DoubleBuilder*>(builder)->Append(v);
    }
    case kByteaOid:
      return static_cast<arrow::BinaryBuilder*>(builder)->Append(
          reinterpret_cast<const uint8_t*>(p), len);
    case kDateOid:
      if (len != 4) return bad_length();
      return static_cast<arrow::Date32Builder*>(builder)->Append(
          ReadBigEndian<int32_t>(p) + kEpochDays);
    case kTimeOid:
      if (len != 8) return bad_length();
      return static_cast<arrow::Time64Builder*>(builder)->Append(
          ReadBigEndian<int64_t>(p));
    case kTimestampOid:
    case kTimestamptzOid:
      if (len != 8) return bad_length();
      return static_cast<arrow::TimestampBuilder*>(builder)->Append(
          ReadBigEndian<int64_t>(p) + kEpochMicros);
    default:  // text-like types: the bytes are the text
      return static_cast<arrow::StringBuilder*>(builder)->Append(p, len);
  }
}

}  // namespace

arrow::Result<std::shared_ptr<arrow::RecordBatch>> ResultToBatch(
    const PGresult* result, const std::vector<ColumnInfo>& columns,
    arrow::MemoryPool* pool, const std::string& context) {
  const int nrows = PQntuples(result);
  const int ncols = PQnfields(result);
  if (ncols != static_cast<int>(columns.size())) {
    return arrow::Status::Invalid(context, ": the query returned ", ncols,
                                  " columns, expected ", columns.size());
  }
  arrow::FieldVector fields;
  arrow::ArrayVector arrays;
  for (int c = 0; c < ncols; ++c) {
    const ColumnInfo& column = columns[c];
    std::unique_ptr<arrow::ArrayBuilder> builder;
    ARROW_RETURN_NOT_OK(arrow::MakeBuilder(pool, column.arrow_type, &builder));
    ARROW_RETURN_NOT_OK(builder->Reserve(nrows));
    for (int r = 0; r < nrows; ++r) {
      if (PQgetisnull(result, r, c)) {
        ARROW_RETURN_NOT_OK(builder->AppendNull());
        continue;
      }
      ARROW_RETURN_NOT_OK(AppendCell(column, PQgetvalue(result, r, c),
                                     PQgetlength(result, r, c), builder.get(), context));
    }
    std::shared_ptr<arrow::Array> array;
    ARROW_RETURN_NOT_OK(builder->Finish(&array));
    fields.push_back(arrow::field(column.name, column.arrow_type));
    arrays.push_back(std::move(array));
  }
  return arrow::RecordBatch::Make(arrow::schema(std::move(fields)), nrows,
                                  std::move(arrays));
}

arrow::Status AppendArrayLiteral(const arrow::Array& values, std::string* out,
                                 const std::string& what) {
  out->push_back('{');
  bool first = true;
  auto sep = [&] {
    if (!first) out->push_back(',');
    first = false;
  };
  const int64_t n = values.length();
  switch (values.type_id()) {
    case arrow::Type::INT8:
    case arrow::Type::INT16:
    case arrow::Type::INT32:
    case arrow::Type::INT64:
    case arrow::Type::UINT8:
    case arrow::Type::UINT16:
    case arrow::Type::UINT32:
    case arrow::Type::UINT64: {
      const auto& data = *values.data();
      char buf[24];
      for (int64_t i = 0; i < n; ++i) {
        if (values.IsNull(i)) continue;
        sep();
        std::to_chars_result r;
        switch (values.type_id()) {
          case arrow::Type::INT8:
            r = std::to_chars(buf, buf + sizeof(buf), data.GetValues<int8_t>(1)[i]);
            break;
          case arrow::Type::INT16:
            r = std::to_chars(buf, buf + sizeof(buf), data.GetValues<int16_t>(1)[i]);
            break;
          case arrow::Type::INT32:
            r = std::to_chars(buf, buf + sizeof(buf), data.GetValues<int32_t>(1)[i]);
            break;
          case arrow::Type::INT64:
            r = std::to_chars(buf, buf + sizeof(buf), data.GetValues<int64_t>(1)[i]);
            break;
          case arrow::Type::UINT8:
            r = std::to_chars(buf, buf + sizeof(buf), data.GetValues<uint8_t>(1)[i]);
            break;
          case arrow::Type::UINT16:
            r = std::to_chars(buf, buf + sizeof(buf), data.GetValues<uint16_t>(1)[i]);
            break;
          case arrow::Type::UINT32:
            r = std::to_chars(buf, buf + sizeof(buf), data.GetValues<uint32_t>(1)[i]);
            break;
          default:
            r = std::to_chars(buf, buf + sizeof(buf), data.GetValues<uint64_t>(1)[i]);
            break;
        }
        out->append(buf, r.ptr);
      }
      break;
    }
    case arrow::Type::BOOL: {
      const auto& b = static_cast<const arrow::BooleanArray&>(values);
      for (int64_t i = 0; i < n; ++i) {
        if (b.IsNull(i)) continue;
        sep();
        out->push_back(b.Value(i) ? 't' : 'f');
      }
      break;
    }
    case arrow::Type::STRING:
    case arrow::Type::LARGE_STRING:
    case arrow::Type::STRING_VIEW: {
      for (int64_t i = 0; i < n; ++i) {
        if (values.IsNull(i)) continue;
        sep();
        std::string_view v;
        if (values.type_id() == arrow::Type::STRING) {
          v = static_cast<const arrow::StringArray&>(values).GetView(i);
        } else if (values.type_id() == arrow::Type::LARGE_STRING) {
          v = static_cast<const arrow::LargeStringArray&>(values).GetView(i);
        } else {
          v = static_cast<const arrow::StringViewArray&>(values).GetView(i);
        }
        out->push_back('"');
        for (char ch : v) {
          if (ch == '"' || ch == '\\') out->push_back('\\');
          out->push_back(ch);
        }
        out->push_back('"');
      }
      break;
    }
    default:
      return arrow::Status::NotImplemented(
          what, ": lookup keys of type ", values.type()->ToString(),
          " are not supported (integers, bool, strings)");
  }
  out->push_back('}');
  return arrow::Status::OK();
}

}  // namespace sabot::postgres
