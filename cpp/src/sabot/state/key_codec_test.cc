// Key and value encoding of keyed state: distinct keys, key groups equal to
// key_by's, and value round trips over every supported Arrow type.
#include "sabot/state/key_codec.h"

#include <arrow/api.h>
#include <arrow/json/from_string.h>
#include <gtest/gtest.h>

#include <set>

#include "sabot/exec/partitioner.h"
#include "sabot/state/value_codec.h"

namespace sabot {
namespace {

std::shared_ptr<arrow::Array> Json(const std::shared_ptr<arrow::DataType>& type,
                                   const std::string& json) {
  return arrow::json::ArrayFromJSONString(type, json).ValueOrDie();
}

TEST(KeyCodecTest, DistinctKeysAndKeyGroupsMatchKeyBy) {
  auto k1 = Json(arrow::int64(), "[1, 2, 1, null, 2, null, 3, 1]");
  auto k2 = Json(arrow::utf8(), R"(["a", "b", "a", "a", "c", "a", "", "a"])");
  auto schema = arrow::schema(
      {arrow::field("k1", arrow::int64()), arrow::field("k2", arrow::utf8())});
  auto batch = arrow::RecordBatch::Make(schema, 8, {k1, k2});
  auto keys = EncodeKeys(*batch, {0, 1}, 128).ValueOrDie();
  ASSERT_EQ(keys.num_rows(), 8);
  // (1,a) (2,b) (null,a) (2,c) (3,"")
  ASSERT_EQ(keys.num_keys(), 5);
  EXPECT_EQ(keys.row_keys(), (std::vector<int32_t>{0, 1, 0, 2, 3, 2, 4, 0}));
  EXPECT_EQ(keys.first_row(2), 3);
  EXPECT_EQ(keys.last_rows(), (std::vector<int64_t>{7, 1, 5, 4, 6}));
  std::vector<uint64_t> hashes;
  ASSERT_TRUE(HashColumns(*batch, {0, 1}, &hashes).ok());
  std::set<std::string> distinct;
  for (int64_t k = 0; k < keys.num_keys(); ++k) {
    const int64_t row = keys.first_row(k);
    EXPECT_EQ(keys.key_group(k), KeyGroupOf(hashes[row], 128));
    EXPECT_EQ(KeyGroupOfStorageKey(keys.storage_key(k)), keys.key_group(k));
    distinct.insert(std::string(keys.key_bytes(k)));
  }
  EXPECT_EQ(distinct.size(), 5u);
}

TEST(KeyCodecTest, KeysDecodeBackToTheirColumns) {
  std::vector<std::shared_ptr<arrow::Array>> columns = {
      Json(arrow::int64(), "[1, null, -7]"),
      Json(arrow::utf8(), R"(["a", "", null])"),
      Json(arrow::boolean(), "[true, null, false]"),
      Json(arrow::timestamp(arrow::TimeUnit::MILLI), "[5, 6, null]"),
      Json(arrow::large_binary(), R"(["YQ==", null, ""])"),
      Json(arrow::float64(), "[1.5, null, 2]")};
  auto keys = EncodeKeyColumns(columns, 128).ValueOrDie();
  std::vector<std::shared_ptr<arrow::DataType>> types;
  for (const auto& c : columns) types.push_back(c->type());
  auto decoded =
      DecodeKeyColumns(keys.storage_keys(), types, arrow::default_memory_pool())
          .ValueOrDie();
  ASSERT_EQ(decoded.size(), columns.size());
  for (size_t i = 0; i < columns.size(); ++i) {
    ASSERT_TRUE(decoded[i]->ValidateFull().ok());
    EXPECT_TRUE(decoded[i]->Equals(*columns[i])) << decoded[i]->ToString();
  }
  EXPECT_FALSE(DecodeKeyColumns(keys.storage_keys(), {arrow::int64()},
                                arrow::default_memory_pool())
                   .ok());
}

TEST(KeyCodecTest, NegativeZeroIsZeroAndBatchesAgree) {
  auto a = Json(arrow::float64(), "[0.0, -0.0, 1.5]");
  auto b = Json(arrow::float64(), "[1.5, -0.0]");
  auto ka = EncodeKeyColumns({a}, 64).ValueOrDie();
  auto kb = EncodeKeyColumns({b}, 64).ValueOrDie();
  EXPECT_EQ(ka.num_keys(), 2);
  EXPECT_EQ(ka.storage_key(0), kb.storage_key(1));
  EXPECT_EQ(ka.storage_key(1), kb.storage_key(0));
}

TEST(KeyCodecTest, MapEntryKeysSplitBack) {
  auto keys = EncodeKeyColumns({Json(arrow::utf8(), R"(["user-1"])")}, 128).ValueOrDie();
  std::string entry = MapEntryKey(keys.storage_key(0), "field");
  EXPECT_EQ(entry.substr(0, MapEntryPrefix(keys.storage_key(0)).size()),
            MapEntryPrefix(keys.storage_key(0)));
  std::string storage;
  std::string_view user;
  ASSERT_TRUE(SplitMapEntryKey(entry, &storage, &user).ok());
  EXPECT_EQ(storage, keys.storage_key(0));
  EXPECT_EQ(user, "field");
  EXPECT_FALSE(SplitMapEntryKey("x", &storage, &user).ok());
}

TEST(KeyCodecTest, RejectsUnsupportedKeysAndTooManyGroups) {
  auto list = Json(arrow::list(arrow::int32()), "[[1]]");
  EXPECT_FALSE(EncodeKeyColumns({list}, 128).ok());
  auto ints = Json(arrow::int32(), "[1]");
  EXPECT_FALSE(EncodeKeyColumns({ints}, kMaxKeyGroups + 1).ok());
}

TEST(ValueCodecTest, RowsRoundTripEveryType) {
  auto schema = arrow::schema({
      arrow::field("i8", arrow::int8()),
      arrow::field("u64", arrow::uint64()),
      arrow::field("f", arrow::float32()),
      arrow::field("d", arrow::float64()),
      arrow::field("b", arrow::boolean()),
      arrow::field("s", arrow::utf8()),
      arrow::field("ls", arrow::large_utf8()),
      arrow::field("bin", arrow::binary()),
      arrow::field("ts", arrow::timestamp(arrow::TimeUnit::MILLI, "UTC")),
      arrow::field("date", arrow::date32()),
      arrow::field("dec", arrow::decimal128(10, 2)),
      arrow::field("fsb", arrow::fixed_size_binary(3)),
      arrow::field("list", arrow::list(arrow::int32())),
      arrow::field("st", arrow::struct_({arrow::field("x", arrow::int64()),
                                         arrow::field("y", arrow::list(arrow::utf8()))})),
      arrow::field("m", arrow::map(arrow::utf8(), arrow::int64())),
      arrow::field("fsl", arrow::fixed_size_list(arrow::int16(), 2)),
      arrow::field("n", arrow::null()),
  });
  std::vector<std::shared_ptr<arrow::Array>> columns = {
      Json(arrow::int8(), "[1, null, -3]"),
      Json(arrow::uint64(), "[18446744073709551615, 0, null]"),
      Json(arrow::float32(), "[1.5, null, -0.0]"),
      Json(arrow::float64(), "[null, 2.25, 1e300]"),
      Json(arrow::boolean(), "[true, false, null]"),
      Json(arrow::utf8(), R"(["", null, "héllo"])"),
      Json(arrow::large_utf8(), R"(["x", "yy", null])"),
      Json(arrow::binary(), R"(["YQ==", null, ""])"),
      Json(arrow::timestamp(arrow::TimeUnit::MILLI, "UTC"), "[0, 1700000000000, null]"),
      Json(arrow::date32(), "[null, 1, 19000]"),
      Json(arrow::decimal128(10, 2), R"(["1.25", null, "-99999999.99"])"),
      Json(arrow::fixed_size_binary(3), R"(["abc", null, "xyz"])"),
      Json(arrow::list(arrow::int32()), "[[1, null, 3], null, []]"),
      Json(arrow::struct_({arrow::field("x", arrow::int64()),
                           arrow::field("y", arrow::list(arrow::utf8()))}),
           R"([{"x": 1, "y": ["a", null]}, null, {"x": null, "y": []}])"),
      Json(arrow::map(arrow::utf8(), arrow::int64()),
           R"([[["a", 1], ["b", null]], null, []])"),
      Json(arrow::fixed_size_list(arrow::int16(), 2), "[[1, 2], null, [null, 4]]"),
      Json(arrow::null(), "[null, null, null]"),
  };
  auto batch = arrow::RecordBatch::Make(schema, 3, columns);
  auto codec = RowCodec::Make(schema, "test").ValueOrDie();
  std::vector<std::string> encoded(3);
  std::vector<std::string*> outs = {&encoded[0], &encoded[1], &encoded[2]};
  // Encode in a different order than the rows to check row addressing.
  ASSERT_TRUE(codec.Encode(*batch, {2, 0, 1}, outs).ok());
  auto decoded =
      codec.Decode({encoded[1], encoded[2], encoded[0]}, arrow::default_memory_pool())
          .ValueOrDie();
  ASSERT_TRUE(decoded->ValidateFull().ok());
  EXPECT_TRUE(decoded->Equals(*batch)) << decoded->ToString() << "\n"
                                       << batch->ToString();
  // A slice encodes like the rows it shows.
  auto sliced = batch->Slice(1, 2);
  std::vector<std::string> again(1);
  std::vector<std::string*> one = {&again[0]};
  ASSERT_TRUE(codec.Encode(*sliced, {1}, one).ok());
  EXPECT_EQ(again[0], encoded[0]);
  // Truncated values are refused, not read past their end.
  EXPECT_FALSE(codec
                   .Decode({std::string_view(encoded[0]).substr(0, 10)},
                           arrow::default_memory_pool())
                   .ok());
}

TEST(ValueCodecTest, AbsentValuesDecodeAsNullAndUnsupportedTypesAreNamed) {
  auto codec = ArrowValueCodec::Make(arrow::utf8(), "state 'x'").ValueOrDie();
  auto values = Json(arrow::utf8(), R"(["a"])");
  std::string a;
  std::vector<std::string*> outs = {&a};
  ASSERT_TRUE(codec.Encode(*values, {0}, outs).ok());
  auto decoded =
      codec.Decode({std::nullopt, std::string_view(a)}, arrow::default_memory_pool())
          .ValueOrDie();
  EXPECT_TRUE(decoded->Equals(*Json(arrow::utf8(), R"([null, "a"])")));
  auto dict = arrow::dictionary(arrow::int32(), arrow::utf8());
  auto st = ArrowValueCodec::Make(dict, "state 'x'").status();
  EXPECT_TRUE(st.IsNotImplemented());
  EXPECT_NE(st.message().find("state 'x'"), std::string::npos);
  EXPECT_FALSE(codec.Encode(*Json(arrow::int32(), "[1]"), {0}, outs).ok());
}

TEST(ValueCodecTest, ScalarSerdes) {
  std::string s;
  StateSerde<int64_t>::Encode(-5, &s);
  EXPECT_EQ(StateSerde<int64_t>::Decode(s).ValueOrDie(), -5);
  EXPECT_FALSE(StateSerde<double>::Decode("abc").ok());
  s.clear();
  StateSerde<std::string>::Encode("xyz", &s);
  EXPECT_EQ(StateSerde<std::string>::Decode(s).ValueOrDie(), "xyz");
}

}  // namespace
}  // namespace sabot
