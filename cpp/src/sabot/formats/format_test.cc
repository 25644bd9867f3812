#include "sabot/formats/format.h"

#include <arrow/api.h>
#include <arrow/json/from_string.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "sabot/formats/avro_format.h"
#include "sabot/formats/json_format.h"

namespace sabot {
namespace {

using arrow::json::ArrayFromJSONString;

std::shared_ptr<arrow::BinaryArray> Messages(const std::vector<std::string>& payloads,
                                             const std::vector<bool>& nulls = {}) {
  arrow::BinaryBuilder builder;
  for (size_t i = 0; i < payloads.size(); ++i) {
    if (i < nulls.size() && nulls[i]) {
      EXPECT_TRUE(builder.AppendNull().ok());
    } else {
      EXPECT_TRUE(builder.Append(payloads[i]).ok());
    }
  }
  return std::static_pointer_cast<arrow::BinaryArray>(builder.Finish().ValueOrDie());
}

std::vector<std::string> ToStrings(const arrow::BinaryArray& array) {
  std::vector<std::string> out;
  for (int64_t i = 0; i < array.length(); ++i) out.emplace_back(array.GetView(i));
  return out;
}

std::shared_ptr<arrow::Array> Json(const std::shared_ptr<arrow::DataType>& type,
                                   const std::string& json) {
  auto result = ArrayFromJSONString(type, json);
  EXPECT_TRUE(result.ok()) << result.status().ToString();
  return result.ValueOrDie();
}

std::vector<int32_t> RowMessages(const DecodedBatch& decoded) {
  std::vector<int32_t> out;
  for (int64_t i = 0; i < decoded.row_message->length(); ++i) {
    out.push_back(decoded.row_message->Value(i));
  }
  return out;
}

std::string Errors(const DecodedBatch& decoded) {
  std::string out;
  for (const auto& e : decoded.errors) {
    out += "#" + std::to_string(e.message_index) + ": " + e.reason + "\n";
  }
  return out;
}

// A batch with nulls in every column, nested struct, list and map.
std::shared_ptr<arrow::RecordBatch> RichBatch() {
  auto point = arrow::struct_(
      {arrow::field("x", arrow::int64()), arrow::field("label", arrow::utf8())});
  auto schema = arrow::schema({
      arrow::field("id", arrow::int64(), false),
      arrow::field("small", arrow::int32()),
      arrow::field("score", arrow::float64()),
      arrow::field("ratio", arrow::float32()),
      arrow::field("ok", arrow::boolean()),
      arrow::field("name", arrow::utf8()),
      arrow::field("blob", arrow::binary()),
      arrow::field("day", arrow::date32()),
      arrow::field("ts", arrow::timestamp(arrow::TimeUnit::MILLI)),
      arrow::field("point", point),
      arrow::field("tags", arrow::list(arrow::int64())),
      arrow::field("attrs", arrow::map(arrow::utf8(), arrow::int64())),
  });
  std::vector<std::shared_ptr<arrow::Array>> columns = {
      Json(arrow::int64(), "[1, -2, 9007199254740993, 0]"),
      Json(arrow::int32(), "[7, null, -2147483648, 2147483647]"),
      Json(arrow::float64(), "[1.5, -0.1, null, 1e300]"),
      Json(arrow::float32(), "[0.25, null, 3.5, -1]"),
      Json(arrow::boolean(), "[true, false, null, true]"),
      Json(arrow::utf8(),
           R"(["plain", "with \"quote\", comma\nnewline", null, "üñí €"])"),
      Json(arrow::binary(), R"(["abc", "", null, "\u0000\u00ff"])"),
      Json(arrow::date32(), "[0, 19000, null, -1]"),
      Json(arrow::timestamp(arrow::TimeUnit::MILLI), "[0, 1700000000123, null, -1000]"),
      Json(point, R"([{"x": 1, "label": "a"}, null, {"x": null, "label": null},
                      {"x": -5, "label": "z"}])"),
      Json(arrow::list(arrow::int64()), "[[1, 2], [], null, [null, 3]]"),
      Json(arrow::map(arrow::utf8(), arrow::int64()),
           R"([[["a", 1], ["b", null]], [], null, [["k", 5]]])"),
  };
  return arrow::RecordBatch::Make(schema, 4, columns);
}

// Flat columns only (what csv supports).
std::shared_ptr<arrow::RecordBatch> FlatBatch() {
  auto schema = arrow::schema({
      arrow::field("id", arrow::int64()),
      arrow::field("small", arrow::int16()),
      arrow::field("score", arrow::float64()),
      arrow::field("ok", arrow::boolean()),
      arrow::field("name", arrow::utf8()),
      arrow::field("day", arrow::date32()),
      arrow::field("ts", arrow::timestamp(arrow::TimeUnit::MICRO)),
  });
  std::vector<std::shared_ptr<arrow::Array>> columns = {
      Json(arrow::int64(), "[1, null, -3, 4]"),
      Json(arrow::int16(), "[7, -32768, null, 0]"),
      Json(arrow::float64(), "[1.5, -0.1, null, 1e300]"),
      Json(arrow::boolean(), "[true, false, null, true]"),
      Json(arrow::utf8(), R"(["plain", "with \"quote\", comma\nnewline", null, ""])"),
      Json(arrow::date32(), "[0, 19000, null, -719162]"),
      Json(arrow::timestamp(arrow::TimeUnit::MICRO), "[0, 1700000000123456, null, -1]"),
  };
  return arrow::RecordBatch::Make(schema, 4, columns);
}

void ExpectRoundTrip(FormatOptions options,
                     const std::shared_ptr<arrow::RecordBatch>& batch) {
  options.schema = batch->schema();
  auto encoder = MakeEncoder(options, batch->schema(), arrow::default_memory_pool());
  ASSERT_TRUE(encoder.ok()) << encoder.status().ToString();
  auto encoded = (*encoder)->Encode(*batch);
  ASSERT_TRUE(encoded.ok()) << encoded.status().ToString();
  auto decoder = MakeDecoder(options, arrow::default_memory_pool());
  ASSERT_TRUE(decoder.ok()) << decoder.status().ToString();
  auto decoded = (*decoder)->Decode(**encoded);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_TRUE(decoded->errors.empty()) << Errors(*decoded);
  ASSERT_TRUE(decoded->rows->ValidateFull().ok());
  EXPECT_TRUE(decoded->rows->Equals(*batch))
      << "decoded:\n"
      << decoded->rows->ToString() << "\nexpected:\n"
      << batch->ToString();
  ASSERT_EQ(decoded->row_message->length(), batch->num_rows());
  if (options.name != "ipc") {
    for (int64_t i = 0; i < batch->num_rows(); ++i) {
      EXPECT_EQ(decoded->row_message->Value(i), i);
    }
  }
}

std::unique_ptr<Decoder> MustDecoder(const FormatOptions& options) {
  auto decoder = MakeDecoder(options, arrow::default_memory_pool());
  EXPECT_TRUE(decoder.ok()) << decoder.status().ToString();
  return std::move(decoder).ValueOrDie();
}

DecodedBatch MustDecode(Decoder* decoder, const std::vector<std::string>& payloads) {
  auto decoded = decoder->Decode(*Messages(payloads));
  EXPECT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_TRUE(decoded->rows->ValidateFull().ok());
  return std::move(decoded).ValueOrDie();
}

// ---------------------------------------------------------------------------
// Round trips

TEST(FormatRoundTripTest, Json) {
  FormatOptions options;
  options.name = "json";
  ExpectRoundTrip(options, RichBatch());
}

TEST(FormatRoundTripTest, Avro) {
  FormatOptions options;
  options.name = "avro";
  ExpectRoundTrip(options, RichBatch());
  options.confluent_wire_format = true;
  options.confluent_schema_id = 42;
  ExpectRoundTrip(options, RichBatch());
}

TEST(FormatRoundTripTest, Ipc) {
  FormatOptions options;
  options.name = "ipc";
  ExpectRoundTrip(options, RichBatch());
}

TEST(FormatRoundTripTest, Csv) {
  FormatOptions options;
  options.name = "csv";
  ExpectRoundTrip(options, FlatBatch());
  options.csv_delimiter = ';';
  ExpectRoundTrip(options, FlatBatch());
}

TEST(FormatRoundTripTest, RawAndString) {
  auto batch = arrow::RecordBatch::Make(
      arrow::schema({arrow::field("value", arrow::binary(), false)}), 3,
      {Json(arrow::binary(), R"(["a", "", "\u0000\u00ff"])")});
  FormatOptions options;
  options.name = "raw";
  ExpectRoundTrip(options, batch);
  auto text = arrow::RecordBatch::Make(
      arrow::schema({arrow::field("value", arrow::utf8(), false)}), 2,
      {Json(arrow::utf8(), R"(["héllo", ""])")});
  options.name = "string";
  ExpectRoundTrip(options, text);
}

TEST(FormatRoundTripTest, UnknownFormat) {
  FormatOptions options;
  options.name = "protobuf";
  EXPECT_TRUE(MakeDecoder(options, nullptr).status().IsInvalid());
}

// ---------------------------------------------------------------------------
// JSON

TEST(FormatJsonTest, InfersNestedSchema) {
  FormatOptions options;
  options.name = "json";
  auto decoder = MustDecoder(options);
  auto decoded = MustDecode(
      decoder.get(),
      {R"({"id": 1, "price": 2, "user": {"name": "ann", "age": 30}, "tags": ["a"], "n": null})",
       R"({"id": 2, "price": 2.5, "user": {"name": "bob"}, "tags": [], "extra": true,
           "mixed": 1})",
       R"({"id": 3, "mixed": "x", "matrix": [[1, 2], [3]]})"});
  auto expected = arrow::schema({
      arrow::field("id", arrow::int64()),
      arrow::field("price", arrow::float64()),
      arrow::field("user", arrow::struct_({arrow::field("name", arrow::utf8()),
                                           arrow::field("age", arrow::int64())})),
      arrow::field("tags", arrow::list(arrow::utf8())),
      arrow::field("n", arrow::utf8()),
      arrow::field("extra", arrow::boolean()),
      arrow::field("mixed", arrow::utf8()),
      arrow::field("matrix", arrow::list(arrow::list(arrow::int64()))),
  });
  ASSERT_TRUE(decoder->schema()->Equals(*expected)) << decoder->schema()->ToString();
  EXPECT_TRUE(decoded.errors.empty()) << Errors(decoded);
  ASSERT_EQ(decoded.rows->num_rows(), 3);
  EXPECT_TRUE(decoded.rows->GetColumnByName("price")->Equals(
      Json(arrow::float64(), "[2, 2.5, null]")));
  EXPECT_TRUE(decoded.rows->GetColumnByName("mixed")->Equals(
      Json(arrow::utf8(), R"([null, "1", "x"])")));
  EXPECT_TRUE(decoded.rows->GetColumnByName("user")->Equals(
      Json(expected->field(2)->type(),
           R"([{"name": "ann", "age": 30}, {"name": "bob", "age": null}, null])")));
}

TEST(FormatJsonTest, InferenceUsesOnlySample) {
  FormatOptions options;
  options.name = "json";
  options.infer_sample_size = 1;
  auto decoder = MustDecoder(options);
  auto decoded = MustDecode(decoder.get(), {R"({"a": 1})", R"({"a": 2, "b": 3})"});
  EXPECT_EQ(decoder->schema()->num_fields(), 1);
  EXPECT_EQ(decoded.rows->num_rows(), 2);
}

TEST(FormatJsonTest, DecodesAgainstGivenSchema) {
  FormatOptions options;
  options.name = "json";
  options.schema = arrow::schema({
      arrow::field("id", arrow::int32()),
      arrow::field("name", arrow::utf8()),
      arrow::field("ts_ms", arrow::timestamp(arrow::TimeUnit::MILLI)),
      arrow::field("ts_us", arrow::timestamp(arrow::TimeUnit::MICRO)),
      arrow::field("ts_ns", arrow::timestamp(arrow::TimeUnit::NANO)),
      arrow::field("day", arrow::date32()),
  });
  auto decoder = MustDecoder(options);
  auto decoded = MustDecode(
      decoder.get(),
      {R"({"name": "x", "ignored": {"deep": [1]}, "id": 5, "ts_ms": 1700000000123,
           "ts_us": "2023-11-14T22:13:20.123456Z", "ts_ns": "2023-11-14 22:13:20+01:00",
           "day": "2024-02-29"})",
       R"({"id": 6, "day": 19782})"});
  EXPECT_TRUE(decoded.errors.empty()) << Errors(decoded);
  auto expected = arrow::RecordBatch::Make(
      options.schema, 2,
      {Json(arrow::int32(), "[5, 6]"), Json(arrow::utf8(), R"(["x", null])"),
       Json(arrow::timestamp(arrow::TimeUnit::MILLI), "[1700000000123, null]"),
       Json(arrow::timestamp(arrow::TimeUnit::MICRO), "[1700000000123456, null]"),
       Json(arrow::timestamp(arrow::TimeUnit::NANO), "[1699996400000000000, null]"),
       Json(arrow::date32(), "[19782, 19782]")});
  EXPECT_TRUE(decoded.rows->Equals(*expected)) << decoded.rows->ToString();
}

TEST(FormatJsonTest, BadMessagesAreErrorsOthersDecode) {
  FormatOptions options;
  options.name = "json";
  options.schema = arrow::schema({
      arrow::field("age", arrow::int64()),
      arrow::field("user",
                   arrow::struct_({arrow::field("tags", arrow::list(arrow::int64()))})),
      arrow::field("id", arrow::int64(), /*nullable=*/false),
  });
  auto decoder = MustDecoder(options);
  auto decoded =
      MustDecode(decoder.get(), {
                                    R"({"age": 1, "id": 1})",
                                    R"({"age": 2, "id": )",  // truncated
                                    R"([1, 2])",             // not an object
                                    R"({"age": "abc", "id": 3})",
                                    R"({"age": 4, "id": 4, "user": {"tags": [1, "x"]}})",
                                    R"({"age": 5})",  // required id missing
                                    R"({"age": 6, "id": 6, "user": {"tags": [7]}})",
                                    R"({"age": 1.5, "id": 7})",
                                });
  EXPECT_EQ(RowMessages(decoded), (std::vector<int32_t>{0, 6}));
  EXPECT_TRUE(
      decoded.rows->GetColumnByName("age")->Equals(Json(arrow::int64(), "[1, 6]")));
  ASSERT_EQ(decoded.errors.size(), 6u) << Errors(decoded);
  EXPECT_EQ(decoded.errors[0].message_index, 1);
  EXPECT_NE(decoded.errors[0].reason.find("invalid JSON"), std::string::npos);
  EXPECT_EQ(decoded.errors[1].message_index, 2);
  EXPECT_NE(decoded.errors[1].reason.find("not a JSON object"), std::string::npos);
  EXPECT_EQ(decoded.errors[2].message_index, 3);
  EXPECT_EQ(decoded.errors[2].reason,
            "field 'age' at $.age: got string \"abc\" (expected int64)");
  EXPECT_EQ(decoded.errors[3].message_index, 4);
  EXPECT_EQ(decoded.errors[3].reason,
            "field 'user.tags' at $.user.tags[1]: got string \"x\" (expected int64)");
  EXPECT_EQ(decoded.errors[4].message_index, 5);
  EXPECT_NE(decoded.errors[4].reason.find("field 'id' at $.id: missing required field"),
            std::string::npos);
  EXPECT_EQ(decoded.errors[5].message_index, 7);
  EXPECT_NE(decoded.errors[5].reason.find("got number 1.5"), std::string::npos);
}

TEST(FormatJsonTest, RangeAndTypeChecks) {
  FormatOptions options;
  options.name = "json";
  options.schema = arrow::schema(
      {arrow::field("b", arrow::int8()), arrow::field("u", arrow::uint32()),
       arrow::field("f", arrow::boolean()), arrow::field("bin", arrow::binary())});
  auto decoder = MustDecoder(options);
  auto decoded = MustDecode(
      decoder.get(), {R"({"b": 127, "u": 4294967295, "bin": "AAE="})", R"({"b": 128})",
                      R"({"u": -1})", R"({"f": 1})", R"({"bin": "%%"})"});
  EXPECT_EQ(RowMessages(decoded), (std::vector<int32_t>{0}));
  ASSERT_EQ(decoded.errors.size(), 4u);
  EXPECT_NE(decoded.errors[0].reason.find("out of range"), std::string::npos);
  EXPECT_NE(decoded.errors[1].reason.find("negative"), std::string::npos);
  EXPECT_NE(decoded.errors[2].reason.find("expected bool"), std::string::npos);
  EXPECT_NE(decoded.errors[3].reason.find("base64"), std::string::npos);
  EXPECT_TRUE(decoded.rows->GetColumnByName("bin")->Equals(
      Json(arrow::binary(), R"(["\u0000\u0001"])")));
}

TEST(FormatJsonTest, EncoderWritesOneObjectPerRow) {
  auto batch = arrow::RecordBatch::Make(
      arrow::schema(
          {arrow::field("a", arrow::int64()), arrow::field("s", arrow::utf8())}),
      2, {Json(arrow::int64(), "[1, null]"), Json(arrow::utf8(), R"(["x\ny", "z"])")});
  FormatOptions options;
  options.name = "json";
  auto encoder = MakeEncoder(options, batch->schema(), nullptr).ValueOrDie();
  auto encoded = encoder->Encode(*batch).ValueOrDie();
  EXPECT_EQ(ToStrings(*encoded),
            (std::vector<std::string>{R"({"a":1,"s":"x\ny"})", R"({"a":null,"s":"z"})"}));
}

// ---------------------------------------------------------------------------
// Avro

// An Avro binary writer written from the specification, independent of the
// codec under test.
struct SpecAvroWriter {
  std::string bytes;
  void Long(int64_t v) {
    uint64_t z = v < 0 ? ((static_cast<uint64_t>(-(v + 1))) << 1) | 1
                       : static_cast<uint64_t>(v) << 1;
    do {
      uint8_t b = z & 0x7F;
      z >>= 7;
      if (z != 0) b |= 0x80;
      bytes.push_back(static_cast<char>(b));
    } while (z != 0);
  }
  void String(const std::string& s) {
    Long(static_cast<int64_t>(s.size()));
    bytes += s;
  }
  void Double(double d) {
    char buf[8];
    std::memcpy(buf, &d, 8);
    bytes.append(buf, 8);
  }
};

TEST(FormatAvroTest, HandComputedBytes) {
  FormatOptions options;
  options.name = "avro";
  options.avro_schema_json =
      R"({"type": "record", "name": "r", "fields": [
           {"name": "id", "type": "long"}, {"name": "name", "type": "string"}]})";
  auto decoder = MustDecoder(options);
  auto decoded = MustDecode(decoder.get(), {std::string("\x02\x02\x61", 3),
                                            std::string("\x7f\x06\x61\x62\x63", 5),
                                            std::string("\x80\x01\x00", 3)});
  EXPECT_TRUE(decoded.errors.empty()) << Errors(decoded);
  auto expected = arrow::RecordBatch::Make(
      arrow::schema({arrow::field("id", arrow::int64(), false),
                     arrow::field("name", arrow::utf8(), false)}),
      3,
      {Json(arrow::int64(), "[1, -64, 64]"), Json(arrow::utf8(), R"(["a", "abc", ""])")});
  EXPECT_TRUE(decoded.rows->Equals(*expected)) << decoded.rows->ToString();
}

constexpr char kRichAvroSchema[] = R"({
  "type": "record", "name": "Event", "namespace": "test",
  "fields": [
    {"name": "id", "type": "long"},
    {"name": "score", "type": ["null", "double"], "default": null},
    {"name": "tags", "type": {"type": "array", "items": "string"}},
    {"name": "attrs", "type": {"type": "map", "values": "int"}},
    {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B", "C"]}},
    {"name": "where", "type": {"type": "record", "name": "Place", "fields": [
        {"name": "city", "type": "string"}, {"name": "zip", "type": ["int", "null"]}]}},
    {"name": "home", "type": ["null", "Place"]},
    {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "day", "type": {"type": "int", "logicalType": "date"}},
    {"name": "hash", "type": {"type": "fixed", "name": "H", "size": 2}},
    {"name": "flag", "type": "boolean"},
    {"name": "unused", "type": {"type": "array", "items": "long"}}
  ]})";

std::string RichAvroDatum(int64_t id, bool with_score) {
  SpecAvroWriter w;
  w.Long(id);
  if (with_score) {
    w.Long(1);
    w.Double(2.5);
  } else {
    w.Long(0);
  }
  w.Long(2);  // tags: one block of two
  w.String("x");
  w.String("y");
  w.Long(0);
  w.Long(-1);  // attrs: a block with a byte size
  w.Long(3);
  w.String("k");
  w.Long(-7);
  w.Long(0);
  w.Long(2);  // kind = C
  w.String("Oslo");
  w.Long(1);  // zip = null (branch 1)
  w.Long(1);  // home: Place
  w.String("Rome");
  w.Long(0);
  w.Long(100);
  w.Long(1700000000123);
  w.Long(19000);
  w.bytes += "\x01\x02";
  w.bytes.push_back(1);
  w.Long(1);  // unused: [5]
  w.Long(5);
  w.Long(0);
  return w.bytes;
}

TEST(FormatAvroTest, DecodesIndependentlyEncodedRecord) {
  FormatOptions options;
  options.name = "avro";
  options.avro_schema_json = kRichAvroSchema;
  auto place = arrow::struct_(
      {arrow::field("city", arrow::utf8(), false), arrow::field("zip", arrow::int32())});
  // The row schema: a subset in another order ("unused" skipped), plus a
  // nullable column the writer does not have.
  options.schema = arrow::schema({
      arrow::field("kind", arrow::utf8()),
      arrow::field("id", arrow::int64()),
      arrow::field("score", arrow::float64()),
      arrow::field("tags", arrow::list(arrow::utf8())),
      arrow::field("attrs", arrow::map(arrow::utf8(), arrow::int64())),
      arrow::field("where", place),
      arrow::field("home", place),
      arrow::field("ts", arrow::timestamp(arrow::TimeUnit::MICRO)),
      arrow::field("day", arrow::date32()),
      arrow::field("hash", arrow::fixed_size_binary(2)),
      arrow::field("flag", arrow::boolean()),
      arrow::field("absent", arrow::utf8()),
  });
  auto decoder = MustDecoder(options);
  auto decoded =
      MustDecode(decoder.get(), {RichAvroDatum(7, true), RichAvroDatum(-8, false)});
  ASSERT_TRUE(decoded.errors.empty()) << Errors(decoded);
  auto expected = arrow::RecordBatch::Make(
      options.schema, 2,
      {Json(arrow::utf8(), R"(["C", "C"])"), Json(arrow::int64(), "[7, -8]"),
       Json(arrow::float64(), "[2.5, null]"),
       Json(arrow::list(arrow::utf8()), R"([["x", "y"], ["x", "y"]])"),
       Json(arrow::map(arrow::utf8(), arrow::int64()), R"([[["k", -7]], [["k", -7]]])"),
       Json(place, R"([{"city": "Oslo", "zip": null}, {"city": "Oslo", "zip": null}])"),
       Json(place, R"([{"city": "Rome", "zip": 100}, {"city": "Rome", "zip": 100}])"),
       Json(arrow::timestamp(arrow::TimeUnit::MICRO),
            "[1700000000123000, 1700000000123000]"),
       Json(arrow::date32(), "[19000, 19000]"),
       Json(arrow::fixed_size_binary(2), R"(["\u0001\u0002", "\u0001\u0002"])"),
       Json(arrow::boolean(), "[true, true]"), Json(arrow::utf8(), "[null, null]")});
  EXPECT_TRUE(decoded.rows->Equals(*expected)) << decoded.rows->ToString();

  // Without an Arrow schema the row schema is derived from the Avro schema.
  options.schema = nullptr;
  auto derived = MustDecoder(options);
  auto rows = MustDecode(derived.get(), {RichAvroDatum(1, true)});
  ASSERT_TRUE(rows.errors.empty()) << Errors(rows);
  EXPECT_EQ(derived->schema()->GetFieldByName("ts")->type()->ToString(),
            "timestamp[ms, tz=UTC]");
  EXPECT_EQ(derived->schema()->GetFieldByName("attrs")->type()->ToString(),
            "map<string, int32>");
  EXPECT_TRUE(derived->schema()->GetFieldByName("score")->nullable());
  EXPECT_FALSE(derived->schema()->GetFieldByName("id")->nullable());
}

TEST(FormatAvroTest, ConfluentHeader) {
  FormatOptions options;
  options.name = "avro";
  options.avro_schema_json =
      R"({"type": "record", "name": "r", "fields": [{"name": "id", "type": "long"}]})";
  options.confluent_wire_format = true;
  options.confluent_schema_id = 258;
  auto decoder = MustDecoder(options);
  const std::string good("\x00\x00\x00\x01\x02\x02", 6);
  auto decoded =
      MustDecode(decoder.get(),
                 {good, std::string("\x01\x00\x00\x01\x02\x02", 6),
                  std::string("\x00\x00\x00\x01\x03\x02", 6), std::string("\x00\x00", 2),
                  std::string("\x00\x00\x00\x01\x02", 5)});
  EXPECT_EQ(RowMessages(decoded), (std::vector<int32_t>{0}));
  ASSERT_EQ(decoded.errors.size(), 4u);
  EXPECT_NE(decoded.errors[0].reason.find("magic byte is 1"), std::string::npos);
  EXPECT_NE(decoded.errors[1].reason.find("schema id 259"), std::string::npos);
  EXPECT_NE(decoded.errors[2].reason.find("shorter than the 5-byte"), std::string::npos);
  EXPECT_EQ(decoded.errors[3].reason, "field 'id': truncated varint at byte 5");

  // Any id is accepted when none is expected; the encoder writes the header.
  options.confluent_schema_id = -1;
  auto any = MustDecoder(options);
  EXPECT_EQ(MustDecode(any.get(), {std::string("\x00\x7f\x00\x00\x00\x02", 6)})
                .rows->num_rows(),
            1);
  options.confluent_schema_id = 258;
  auto batch =
      arrow::RecordBatch::Make(arrow::schema({arrow::field("id", arrow::int64(), false)}),
                               1, {Json(arrow::int64(), "[1]")});
  auto encoded =
      MakeEncoder(options, batch->schema(), nullptr).ValueOrDie()->Encode(*batch);
  ASSERT_TRUE(encoded.ok());
  EXPECT_EQ((*encoded)->GetString(0), good);
}

TEST(FormatAvroTest, TruncatedAndGarbageAreErrorsWithOffsets) {
  FormatOptions options;
  options.name = "avro";
  options.avro_schema_json = kRichAvroSchema;
  auto decoder = MustDecoder(options);
  const std::string datum = RichAvroDatum(123456, true);
  std::vector<std::string> prefixes;
  for (size_t n = 0; n < datum.size(); ++n) prefixes.push_back(datum.substr(0, n));
  auto decoded = MustDecode(decoder.get(), prefixes);
  EXPECT_EQ(decoded.rows->num_rows(), 0);
  ASSERT_EQ(decoded.errors.size(), prefixes.size());
  for (const auto& error : decoded.errors) {
    EXPECT_NE(error.reason.find("at byte"), std::string::npos) << error.reason;
  }
  EXPECT_EQ(decoded.errors[0].reason, "field 'id': truncated varint at byte 0");

  options.avro_schema_json =
      R"({"type": "record", "name": "r", "fields": [{"name": "s", "type": "string"},
          {"name": "a", "type": {"type": "array", "items": "long"}},
          {"name": "u", "type": ["null", "long"]}]})";
  auto small = MustDecoder(options);
  SpecAvroWriter huge_length;
  huge_length.Long(int64_t{1} << 40);
  SpecAvroWriter huge_count;
  huge_count.String("ok");
  huge_count.Long(int64_t{1} << 50);
  SpecAvroWriter bad_branch;
  bad_branch.String("ok");
  bad_branch.Long(0);
  bad_branch.Long(5);
  SpecAvroWriter trailing;
  trailing.String("ok");
  trailing.Long(0);
  trailing.Long(0);
  trailing.bytes += "zz";
  auto errors = MustDecode(
      small.get(), {huge_length.bytes, huge_count.bytes, bad_branch.bytes, trailing.bytes,
                    std::string(12, '\xff'), std::string("\x04\xff\xfe\x00\x00", 5)});
  ASSERT_EQ(errors.errors.size(), 6u) << Errors(errors);
  EXPECT_EQ(errors.errors[0].reason,
            "field 's': length 1099511627776 at byte 0 exceeds the 0 remaining bytes");
  EXPECT_EQ(
      errors.errors[1].reason,
      "field 'a': block count 1125899906842624 at byte 3 exceeds what the 0 remaining "
      "bytes can hold");
  EXPECT_EQ(errors.errors[2].reason, "field 'u': union branch 5 out of range at byte 4");
  EXPECT_EQ(errors.errors[3].reason, "2 trailing bytes after the record at byte 5");
  EXPECT_EQ(errors.errors[4].reason, "field 's': varint longer than 64 bits at byte 0");
  EXPECT_EQ(errors.errors[5].reason, "field 's': invalid UTF-8 in string at byte 3");
}

TEST(FormatAvroTest, SchemaErrors) {
  FormatOptions options;
  options.name = "avro";
  options.avro_schema_json = "{";
  EXPECT_TRUE(MakeDecoder(options, nullptr).status().IsInvalid());
  options.avro_schema_json =
      R"({"type": "record", "name": "n", "fields": [{"name": "next", "type": ["null", "n"]}]})";
  EXPECT_TRUE(MakeDecoder(options, nullptr).status().IsNotImplemented());
  options.avro_schema_json =
      R"({"type": "record", "name": "r", "fields": [{"name": "id", "type": "string"}]})";
  options.schema = arrow::schema({arrow::field("id", arrow::int64())});
  EXPECT_TRUE(MakeDecoder(options, nullptr).status().IsTypeError());
  EXPECT_EQ(
      AvroSchemaFromArrow(*arrow::schema({arrow::field("a", arrow::int64()),
                                          arrow::field("b", arrow::utf8(), false)}))
          .ValueOrDie(),
      R"({"type":"record","name":"row","fields":[{"name":"a","type":["null","long"],)"
      R"("default":null},{"name":"b","type":"string"}]})");
}

// ---------------------------------------------------------------------------
// IPC

std::string IpcMessage(const std::shared_ptr<arrow::RecordBatch>& batch) {
  FormatOptions options;
  options.name = "ipc";
  auto encoded = MakeEncoder(options, batch->schema(), nullptr)
                     .ValueOrDie()
                     ->Encode(*batch)
                     .ValueOrDie();
  EXPECT_EQ(encoded->length(), 1);
  return encoded->GetString(0);
}

TEST(FormatIpcTest, MultiRowMessages) {
  auto batch = RichBatch();
  FormatOptions options;
  options.name = "ipc";
  auto decoder = MustDecoder(options);
  auto decoded =
      MustDecode(decoder.get(), {IpcMessage(batch->Slice(0, 3)),
                                 IpcMessage(batch->Slice(3, 1)), IpcMessage(batch)});
  EXPECT_TRUE(decoded.errors.empty()) << Errors(decoded);
  EXPECT_EQ(RowMessages(decoded), (std::vector<int32_t>{0, 0, 0, 1, 2, 2, 2, 2}));
  EXPECT_TRUE(decoded.rows->Slice(0, 4)->Equals(*batch));
  EXPECT_TRUE(decoded.rows->Slice(4, 4)->Equals(*batch));
  EXPECT_TRUE(decoder->schema()->Equals(*batch->schema()));
}

TEST(FormatIpcTest, GarbageTruncatedAndWrongSchema) {
  auto batch = RichBatch();
  const std::string good = IpcMessage(batch);
  FormatOptions options;
  options.name = "ipc";
  options.schema = batch->schema();
  auto decoder = MustDecoder(options);
  auto other = arrow::RecordBatch::Make(arrow::schema({arrow::field("x", arrow::int8())}),
                                        1, {Json(arrow::int8(), "[1]")});
  auto decoded = MustDecode(
      decoder.get(), {"garbage bytes here", good.substr(0, good.size() / 2),
                      good.substr(0, good.size() - 9), good, IpcMessage(other), ""});
  EXPECT_EQ(RowMessages(decoded), (std::vector<int32_t>{3, 3, 3, 3}));
  ASSERT_EQ(decoded.errors.size(), 5u) << Errors(decoded);
  EXPECT_EQ(decoded.errors[0].message_index, 0);
  EXPECT_EQ(decoded.errors[1].message_index, 1);
  EXPECT_EQ(decoded.errors[2].message_index, 2);
  EXPECT_NE(decoded.errors[3].reason.find("differs from the expected"),
            std::string::npos);
  EXPECT_EQ(decoded.errors[4].message_index, 5);
}

// ---------------------------------------------------------------------------
// CSV, raw, string

TEST(FormatCsvTest, ParsesQuotedAndTypedFields) {
  FormatOptions options;
  options.name = "csv";
  options.schema = arrow::schema(
      {arrow::field("id", arrow::int64()), arrow::field("name", arrow::utf8()),
       arrow::field("price", arrow::float64()), arrow::field("ok", arrow::boolean()),
       arrow::field("ts", arrow::timestamp(arrow::TimeUnit::SECOND))});
  auto decoder = MustDecoder(options);
  auto decoded = MustDecode(
      decoder.get(), {R"(1,"a, ""b""",2.5,true,2024-01-01T00:00:01Z)", "2,,1e3,0,17\r\n",
                      R"(3,"",-1,FALSE,)", "4,x,1", "5,x,abc,true,1", "six,x,1,true,1",
                      R"(7,"open,1,true,1)", R"(8,"a"b,1,true,1)", "9,x,1,maybe,1"});
  EXPECT_EQ(RowMessages(decoded), (std::vector<int32_t>{0, 1, 2}));
  auto expected = arrow::RecordBatch::Make(
      options.schema, 3,
      {Json(arrow::int64(), "[1, 2, 3]"),
       Json(arrow::utf8(), R"(["a, \"b\"", null, ""])"),
       Json(arrow::float64(), "[2.5, 1000, -1]"),
       Json(arrow::boolean(), "[true, false, false]"),
       Json(arrow::timestamp(arrow::TimeUnit::SECOND), "[1704067201, 17, null]")});
  EXPECT_TRUE(decoded.rows->Equals(*expected)) << decoded.rows->ToString();
  ASSERT_EQ(decoded.errors.size(), 6u) << Errors(decoded);
  EXPECT_EQ(decoded.errors[0].reason, "expected 5 columns, got 3");
  EXPECT_EQ(decoded.errors[1].reason,
            "column 'price' (3): cannot parse \"abc\" as double");
  EXPECT_EQ(decoded.errors[2].reason, "column 'id' (1): cannot parse \"six\" as int64");
  EXPECT_NE(decoded.errors[3].reason.find("unterminated"), std::string::npos);
  EXPECT_NE(decoded.errors[4].reason.find("after closing quote"), std::string::npos);
  EXPECT_NE(decoded.errors[5].reason.find("column 'ok'"), std::string::npos);
}

TEST(FormatRawTest, RawIsZeroCopy) {
  FormatOptions options;
  options.name = "raw";
  auto decoder = MustDecoder(options);
  auto messages = Messages({"a", "\xff\x00", ""});
  auto decoded = decoder->Decode(*messages).ValueOrDie();
  EXPECT_EQ(decoded.rows->column(0)->data()->buffers[2]->data(),
            messages->value_data()->data());
  EXPECT_EQ(decoded.rows->schema()->field(0)->name(), "value");
  // Nulls (tombstones) are skipped.
  auto with_null =
      decoder->Decode(*Messages({"a", "b", "c"}, {false, true, false})).ValueOrDie();
  EXPECT_EQ(RowMessages(with_null), (std::vector<int32_t>{0, 2}));
}

TEST(FormatRawTest, StringRejectsInvalidUtf8) {
  FormatOptions options;
  options.name = "string";
  auto decoder = MustDecoder(options);
  auto decoded = MustDecode(decoder.get(), {"ok", "bad \xc3\x28", "é"});
  EXPECT_EQ(RowMessages(decoded), (std::vector<int32_t>{0, 2}));
  ASSERT_EQ(decoded.errors.size(), 1u);
  EXPECT_EQ(decoded.errors[0].message_index, 1);
  EXPECT_NE(decoded.errors[0].reason.find("invalid UTF-8"), std::string::npos);
  EXPECT_TRUE(decoded.rows->column(0)->Equals(Json(arrow::utf8(), R"(["ok", "é"])")));
}

// ---------------------------------------------------------------------------
// Never crash: mutated and random bytes

std::string Mutate(const std::string& seed, std::mt19937_64& rng) {
  std::string s = seed;
  const int kind = static_cast<int>(rng() % 6);
  auto pos = [&](size_t n) { return n == 0 ? 0 : static_cast<size_t>(rng() % n); };
  switch (kind) {
    case 0:  // random bytes
      s.assign(rng() % 64, '\0');
      for (auto& c : s) c = static_cast<char>(rng());
      break;
    case 1:  // truncate
      s.resize(pos(s.size() + 1));
      break;
    default: {  // flip, overwrite or insert a few bytes
      const int edits = 1 + static_cast<int>(rng() % 4);
      for (int e = 0; e < edits; ++e) {
        const size_t p = pos(s.size());
        const int op = static_cast<int>(rng() % 3);
        if (op == 0 && !s.empty()) {
          s[p] = static_cast<char>(s[p] ^ (1 << (rng() % 8)));
        } else if (op == 1 && !s.empty()) {
          s[p] = static_cast<char>(rng());
        } else {
          s.insert(p, 1, static_cast<char>(rng()));
        }
      }
    }
  }
  return s;
}

void ExpectNeverCrashes(FormatOptions options, const std::vector<std::string>& seeds,
                        bool many_rows_per_message) {
  auto decoder = MustDecoder(options);
  std::mt19937_64 rng(20240611);
  int64_t rows = 0, errors = 0;
  for (int round = 0; round < 20; ++round) {
    std::vector<std::string> payloads;
    for (int i = 0; i < 500; ++i)
      payloads.push_back(Mutate(seeds[rng() % seeds.size()], rng));
    auto decoded = decoder->Decode(*Messages(payloads));
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    ASSERT_TRUE(decoded->rows->ValidateFull().ok());
    ASSERT_EQ(decoded->row_message->length(), decoded->rows->num_rows());
    std::set<int64_t> with_rows, with_errors;
    for (int64_t i = 0; i < decoded->row_message->length(); ++i) {
      with_rows.insert(decoded->row_message->Value(i));
    }
    for (const auto& e : decoded->errors) {
      ASSERT_FALSE(e.reason.empty());
      ASSERT_TRUE(with_errors.insert(e.message_index).second);
      ASSERT_EQ(with_rows.count(e.message_index), 0u);
    }
    if (!many_rows_per_message) {
      ASSERT_EQ(decoded->rows->num_rows(), static_cast<int64_t>(with_rows.size()));
    }
    for (int64_t i = 0; i < 500; ++i) {
      if (with_rows.count(i) || with_errors.count(i)) continue;
      // Only an IPC message with zero-row batches may give neither.
      ASSERT_TRUE(many_rows_per_message) << "message " << i << " unaccounted";
      auto alone = decoder->Decode(*Messages({payloads[static_cast<size_t>(i)]}));
      ASSERT_TRUE(alone.ok());
      ASSERT_EQ(alone->rows->num_rows(), 0);
      ASSERT_TRUE(alone->errors.empty());
    }
    rows += static_cast<int64_t>(with_rows.size());
    errors += static_cast<int64_t>(with_errors.size());
  }
  std::printf("[%s] 10000 mutated messages: %lld decoded, %lld errors\n",
              options.name.c_str(), static_cast<long long>(rows),
              static_cast<long long>(errors));
  EXPECT_GT(errors, 0);
}

std::vector<std::string> EncodeRows(FormatOptions options,
                                    const std::shared_ptr<arrow::RecordBatch>& batch) {
  auto encoder = MakeEncoder(options, batch->schema(), nullptr).ValueOrDie();
  std::vector<std::string> out;
  for (int64_t i = 0; i < batch->num_rows(); ++i) {
    auto encoded = encoder->Encode(*batch->Slice(i, 1)).ValueOrDie();
    for (const auto& s : ToStrings(*encoded)) out.push_back(s);
  }
  return out;
}

TEST(FormatNeverCrashTest, Json) {
  FormatOptions options;
  options.name = "json";
  options.schema = RichBatch()->schema();
  ExpectNeverCrashes(options, EncodeRows(options, RichBatch()), false);
  options.schema = nullptr;  // inferred from mutated input
  ExpectNeverCrashes(options, EncodeRows(options, RichBatch()), false);
}

TEST(FormatNeverCrashTest, Avro) {
  FormatOptions options;
  options.name = "avro";
  options.schema = RichBatch()->schema();
  ExpectNeverCrashes(options, EncodeRows(options, RichBatch()), false);
  options.schema = nullptr;
  options.avro_schema_json = kRichAvroSchema;
  options.confluent_wire_format = true;
  std::vector<std::string> seeds;
  for (int i = 0; i < 4; ++i) {
    seeds.push_back(std::string("\x00\x00\x00\x00\x01", 5) +
                    RichAvroDatum(i * 1000, i % 2));
  }
  ExpectNeverCrashes(options, seeds, false);
}

TEST(FormatNeverCrashTest, Ipc) {
  FormatOptions options;
  options.name = "ipc";
  auto batch = RichBatch();
  ExpectNeverCrashes(options, {IpcMessage(batch), IpcMessage(batch->Slice(1, 2))}, true);
}

TEST(FormatNeverCrashTest, CsvAndString) {
  FormatOptions options;
  options.name = "csv";
  options.schema = FlatBatch()->schema();
  ExpectNeverCrashes(options, EncodeRows(options, FlatBatch()), false);
  options.name = "string";
  ExpectNeverCrashes(options, {"hello", "wörld", ""}, false);
}

// ---------------------------------------------------------------------------
// Throughput (prints only)

TEST(FormatThroughputTest, JsonAndIpcDecode) {
  constexpr int kMessages = 200000;
  std::vector<std::string> payloads;
  for (int i = 0; i < kMessages; ++i) {
    payloads.push_back("{\"auction\":" + std::to_string(1000 + i % 977) +
                       ",\"bidder\":" + std::to_string(i * 7) +
                       ",\"price\":" + std::to_string(100 + i % 10000) +
                       ",\"channel\":\"channel-" + std::to_string(i % 10) +
                       "\",\"url\":\"https://example.com/x/" + std::to_string(i) +
                       "\",\"date_time\":" + std::to_string(1700000000000LL + i) +
                       ",\"extra\":\"\"}");
  }
  auto messages = Messages(payloads);
  FormatOptions options;
  options.name = "json";
  options.schema = arrow::schema(
      {arrow::field("auction", arrow::int64()), arrow::field("bidder", arrow::int64()),
       arrow::field("price", arrow::int64()), arrow::field("channel", arrow::utf8()),
       arrow::field("url", arrow::utf8()),
       arrow::field("date_time", arrow::timestamp(arrow::TimeUnit::MILLI)),
       arrow::field("extra", arrow::utf8())});
  auto decoder = MustDecoder(options);
  auto start = std::chrono::steady_clock::now();
  auto decoded = decoder->Decode(*messages).ValueOrDie();
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(decoded.rows->num_rows(), kMessages);
  std::printf("json decode: %d messages (%.1f MB) in %.3f s: %.0f rows/s\n", kMessages,
              static_cast<double>(messages->value_data()->size()) / 1e6, seconds,
              kMessages / seconds);

  // IPC: 1 row per message, and 1000 rows per message.
  FormatOptions ipc;
  ipc.name = "ipc";
  for (int64_t rows_per_message : {int64_t{1}, int64_t{1000}}) {
    std::vector<std::string> ipc_payloads;
    for (int64_t offset = 0; offset + rows_per_message <= 20000;
         offset += rows_per_message) {
      ipc_payloads.push_back(IpcMessage(decoded.rows->Slice(offset, rows_per_message)));
    }
    auto ipc_messages = Messages(ipc_payloads);
    auto ipc_decoder = MustDecoder(ipc);
    start = std::chrono::steady_clock::now();
    auto ipc_decoded = ipc_decoder->Decode(*ipc_messages).ValueOrDie();
    seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ASSERT_EQ(ipc_decoded.rows->num_rows(), 20000);
    std::printf("ipc decode, %lld rows/message: %.0f rows/s (%.0f messages/s)\n",
                static_cast<long long>(rows_per_message), 20000 / seconds,
                static_cast<double>(ipc_payloads.size()) / seconds);
  }
}

}  // namespace
}  // namespace sabot
