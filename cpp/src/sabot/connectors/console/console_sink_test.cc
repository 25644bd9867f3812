// Tests of the console sink's table rendering.
#include "sabot/connectors/console/console_sink.h"

#include <arrow/api.h>
#include <arrow/json/from_string.h>
#include <gtest/gtest.h>

#include <string>

#include "sabot/plan/registry.h"

namespace sabot {
namespace {

std::shared_ptr<arrow::Array> FromJson(const std::shared_ptr<arrow::DataType>& type,
                                       const std::string& json) {
  auto result = arrow::json::ArrayFromJSONString(type, json);
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? *result : nullptr;
}

std::shared_ptr<arrow::RecordBatch> NumberedBatch(int64_t rows) {
  arrow::Int64Builder ids;
  arrow::StringBuilder names;
  for (int64_t i = 0; i < rows; ++i) {
    EXPECT_TRUE(ids.Append(i * 1000).ok());
    EXPECT_TRUE(names.Append("name-" + std::to_string(i)).ok());
  }
  std::shared_ptr<arrow::Array> id_array, name_array;
  EXPECT_TRUE(ids.Finish(&id_array).ok());
  EXPECT_TRUE(names.Finish(&name_array).ok());
  return arrow::RecordBatch::Make(
      arrow::schema({arrow::field("auction_id", arrow::int64()),
                     arrow::field("bidder", arrow::utf8())}),
      rows, {id_array, name_array});
}

TEST(ConsoleSinkTest, FormatsHeadersValuesAndMoreRows) {
  const std::string table = FormatTable(*NumberedBatch(25), 20);
  EXPECT_NE(table.find("auction_id"), std::string::npos) << table;
  EXPECT_NE(table.find("bidder"), std::string::npos) << table;
  EXPECT_NE(table.find("19000"), std::string::npos) << table;
  EXPECT_NE(table.find("name-19"), std::string::npos) << table;
  EXPECT_EQ(table.find("name-20"), std::string::npos) << table;
  EXPECT_NE(table.find("... 5 more rows"), std::string::npos) << table;

  // Header, separator, 20 rows, the "more rows" line; all table lines one width.
  int lines = 0;
  size_t width = std::string::npos;
  size_t start = 0;
  while (start < table.size()) {
    size_t end = table.find('\n', start);
    ASSERT_NE(end, std::string::npos);
    const std::string line = table.substr(start, end - start);
    if (line.rfind("...", 0) != 0) {
      if (width == std::string::npos) width = line.size();
      EXPECT_EQ(line.size(), width) << line;
    }
    ++lines;
    start = end + 1;
  }
  EXPECT_EQ(lines, 23);

  const std::string all = FormatTable(*NumberedBatch(3), 20);
  EXPECT_EQ(all.find("more rows"), std::string::npos) << all;
}

TEST(ConsoleSinkTest, NullsLongStringsAndTimestamps) {
  auto batch = arrow::RecordBatch::Make(
      arrow::schema({arrow::field("s", arrow::utf8()),
                     arrow::field("ts", arrow::timestamp(arrow::TimeUnit::MILLI))}),
      2,
      {FromJson(arrow::utf8(), R"(["line\nbreak", null])"),
       FromJson(arrow::timestamp(arrow::TimeUnit::MILLI), "[86400000, 1700000000000]")});
  std::string table = FormatTable(*batch, 20);
  EXPECT_NE(table.find("line\\nbreak"), std::string::npos) << table;
  EXPECT_NE(table.find("null"), std::string::npos) << table;
  EXPECT_NE(table.find("1970-01-02"), std::string::npos) << table;
  EXPECT_NE(table.find("2023-11-14"), std::string::npos) << table;

  auto long_batch = arrow::RecordBatch::Make(
      arrow::schema({arrow::field("s", arrow::utf8())}), 1,
      {FromJson(arrow::utf8(), "[\"" + std::string(100, 'x') + "tail\"]")});
  table = FormatTable(*long_batch, 20);
  EXPECT_NE(table.find("\xE2\x80\xA6"), std::string::npos) << table;
  EXPECT_EQ(table.find("tail"), std::string::npos) << table;
}

TEST(ConsoleSinkTest, OperatorPrintsAndRegisters) {
  OperatorRegistry registry;
  RegisterConsoleSink(&registry);
  PlanNode node;
  node.kind = "console_sink";
  node.name = "console_sink#2";
  auto options = std::make_shared<ConsoleSinkOptions>();
  options->max_rows_per_batch = 2;
  options->title = "bids";
  node.options = options;
  std::unique_ptr<Operator> op;
  auto made = registry.MakeOperator(node, 0, 1);
  ASSERT_TRUE(made.ok()) << made.status();
  op = std::move(made).ValueOrDie();
  OperatorContext ctx;
  ctx.operator_name = node.name;

  class CountingCollector : public Collector {
   public:
    arrow::Status Emit(std::shared_ptr<arrow::RecordBatch>) override {
      ++batches;
      return arrow::Status::OK();
    }
    arrow::Status EmitWatermark(int64_t) override { return arrow::Status::OK(); }
    int batches = 0;
  } collector;

  ASSERT_TRUE(op->Open(&ctx).ok());
  testing::internal::CaptureStdout();
  arrow::Status st = op->ProcessBatch(0, NumberedBatch(5), &ctx, &collector);
  const std::string printed = testing::internal::GetCapturedStdout();
  ASSERT_TRUE(st.ok()) << st;
  ASSERT_TRUE(op->Close(&ctx, &collector).ok());
  EXPECT_EQ(collector.batches, 0);
  EXPECT_NE(printed.find("== bids =="), std::string::npos) << printed;
  EXPECT_NE(printed.find("... 3 more rows"), std::string::npos) << printed;
  EXPECT_NE(options->ToString().find("\"title\":\"bids\""), std::string::npos);
}

}  // namespace
}  // namespace sabot
