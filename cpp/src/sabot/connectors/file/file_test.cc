// Tests of the file source, the file sink and the JSON-lines encoder, on real
// files in a fresh temporary directory.
#include <arrow/api.h>
#include <arrow/csv/api.h>
#include <arrow/io/file.h>
#include <arrow/io/memory.h>
#include <arrow/ipc/api.h>
#include <arrow/json/api.h>
#include <arrow/json/from_string.h>
#include <gtest/gtest.h>
#include <parquet/arrow/reader.h>
#include <stdlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "sabot/connectors/file/file_sink.h"
#include "sabot/connectors/file/file_source.h"
#include "sabot/formats/json_lines.h"
#include "sabot/plan/registry.h"

namespace sabot {
namespace {

namespace fs = std::filesystem;

#define SABOT_CONCAT_INNER(a, b) a##b
#define SABOT_CONCAT(a, b) SABOT_CONCAT_INNER(a, b)
#define SABOT_ASSIGN_OR_FAIL_IMPL(res, lhs, expr) \
  auto res = (expr);                              \
  ASSERT_TRUE(res.ok()) << res.status();          \
  lhs = std::move(res).ValueOrDie()
// Assigns the value of a Result to `lhs`, or fails the test.
#define SABOT_ASSIGN_OR_FAIL(lhs, expr) \
  SABOT_ASSIGN_OR_FAIL_IMPL(SABOT_CONCAT(_result_, __LINE__), lhs, expr)

// A collector that drops everything: sinks emit nothing anyway.
class NullCollector : public Collector {
 public:
  arrow::Status Emit(std::shared_ptr<arrow::RecordBatch>) override {
    ++emitted;
    return arrow::Status::OK();
  }
  arrow::Status EmitWatermark(int64_t) override { return arrow::Status::OK(); }
  int emitted = 0;
};

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "sabot_file_test_XXXXXX").string();
    char* made = mkdtemp(pattern.data());
    if (made != nullptr) path_ = made;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

void WriteText(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

std::shared_ptr<arrow::Schema> TestSchema() {
  return arrow::schema(
      {arrow::field("id", arrow::int64()), arrow::field("price", arrow::float64()),
       arrow::field("name", arrow::utf8()), arrow::field("flag", arrow::boolean()),
       arrow::field("ts", arrow::timestamp(arrow::TimeUnit::MICRO))});
}

std::shared_ptr<arrow::Array> FromJson(const std::shared_ptr<arrow::DataType>& type,
                                       const std::string& json) {
  auto result = arrow::json::ArrayFromJSONString(type, json);
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? *result : nullptr;
}

// Batch k of the test data: 3 rows with ids 3k.., with nulls, quotes, newlines,
// empty and non-ASCII strings.
std::shared_ptr<arrow::RecordBatch> TestBatch(int k) {
  const int64_t base = 3 * k;
  auto ids = FromJson(arrow::int64(), "[" + std::to_string(base) + "," +
                                          std::to_string(base + 1) + "," +
                                          std::to_string(base + 2) + "]");
  auto prices =
      FromJson(arrow::float64(), k % 2 ? "[0.1, null, 1e20]" : "[-2.5, 3, 0.3]");
  auto names =
      FromJson(arrow::utf8(), k % 2 ? R"(["a \"quoted\", comma", null, ""])"
                                    : R"(["line\nbreak", "h\u00e9llo", "tab\there"])");
  auto flags = FromJson(arrow::boolean(), "[true, null, false]");
  auto ts = FromJson(arrow::timestamp(arrow::TimeUnit::MICRO),
                     "[" + std::to_string(1700000000000000 + base) + ", null, 0]");
  return arrow::RecordBatch::Make(TestSchema(), 3, {ids, prices, names, flags, ts});
}

OperatorContext MakeContext(const std::string& name, int instance, int parallelism) {
  OperatorContext ctx;
  ctx.operator_name = name;
  ctx.instance_index = instance;
  ctx.parallelism = parallelism;
  return ctx;
}

arrow::Status WriteThroughSink(
    const std::string& format, const fs::path& dir, int instance, int parallelism,
    const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches) {
  FileSinkOptions options;
  options.path = dir.string();
  options.format = format;
  ARROW_ASSIGN_OR_RAISE(auto sink, MakeFileSink(options, instance));
  OperatorContext ctx = MakeContext("file_sink#1", instance, parallelism);
  NullCollector collector;
  ARROW_RETURN_NOT_OK(sink->Open(&ctx));
  for (const auto& batch : batches) {
    ARROW_RETURN_NOT_OK(sink->ProcessBatch(0, batch, &ctx, &collector));
  }
  ARROW_RETURN_NOT_OK(sink->Close(&ctx, &collector));
  if (collector.emitted != 0) return arrow::Status::Invalid("sink emitted a batch");
  return arrow::Status::OK();
}

// Runs one source instance to the end; returns its batches or the first error.
arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>> ReadThroughSource(
    const FileSourceOptions& options, int instance, int parallelism) {
  ARROW_ASSIGN_OR_RAISE(auto reader,
                        MakeFileSourceReader(options, instance, parallelism));
  OperatorContext ctx = MakeContext("file_source#0", instance, parallelism);
  ARROW_RETURN_NOT_OK(reader->Open(&ctx));
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  for (int polls = 0;; ++polls) {
    if (polls > 100000) return arrow::Status::Invalid("source did not end");
    StreamElement element;
    ARROW_ASSIGN_OR_RAISE(PollResult result, reader->Poll(&element));
    if (result == PollResult::kEndOfInput) break;
    if (result == PollResult::kElement && element.is_batch()) {
      batches.push_back(element.batch);
    }
  }
  ARROW_RETURN_NOT_OK(reader->Close());
  return batches;
}

arrow::Result<std::shared_ptr<arrow::Table>> ToTable(
    const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches,
    const std::shared_ptr<arrow::Schema>& schema) {
  return arrow::Table::FromRecordBatches(schema, batches);
}

void ExpectTablesEqual(const arrow::Table& expected, const arrow::Table& actual) {
  EXPECT_TRUE(expected.Equals(actual)) << "expected:\n"
                                       << expected.ToString() << "\nactual:\n"
                                       << actual.ToString();
}

// Reads one file with Arrow's own reader for `format`, bypassing the source.
arrow::Result<std::shared_ptr<arrow::Table>> ReadWithArrow(const std::string& format,
                                                           const fs::path& path) {
  ARROW_ASSIGN_OR_RAISE(auto file, arrow::io::ReadableFile::Open(path.string()));
  auto schema = TestSchema();
  if (format == "parquet") {
    ARROW_ASSIGN_OR_RAISE(auto reader,
                          parquet::arrow::OpenFile(file, arrow::default_memory_pool()));
    std::shared_ptr<arrow::Table> table;
    ARROW_RETURN_NOT_OK(reader->ReadTable().Value(&table));
    return table;
  }
  if (format == "csv") {
    auto convert = arrow::csv::ConvertOptions::Defaults();
    for (const auto& f : schema->fields()) convert.column_types[f->name()] = f->type();
    convert.strings_can_be_null = true;
    convert.quoted_strings_can_be_null = false;
    ARROW_ASSIGN_OR_RAISE(
        auto reader,
        arrow::csv::TableReader::Make(arrow::io::default_io_context(), file,
                                      arrow::csv::ReadOptions::Defaults(),
                                      arrow::csv::ParseOptions::Defaults(), convert));
    return reader->Read();
  }
  if (format == "jsonl") {
    // The encoder writes timestamps as integers in their unit.
    auto parse = arrow::json::ParseOptions::Defaults();
    ARROW_ASSIGN_OR_RAISE(parse.explicit_schema,
                          schema->SetField(4, arrow::field("ts", arrow::int64())));
    ARROW_ASSIGN_OR_RAISE(auto reader, arrow::json::TableReader::Make(
                                           arrow::default_memory_pool(), file,
                                           arrow::json::ReadOptions::Defaults(), parse));
    ARROW_ASSIGN_OR_RAISE(auto table, reader->Read());
    ARROW_ASSIGN_OR_RAISE(auto ts, table->column(4)->View(schema->field(4)->type()));
    return table->SetColumn(4, schema->field(4), ts);
  }
  ARROW_ASSIGN_OR_RAISE(auto reader, arrow::ipc::RecordBatchFileReader::Open(file));
  return reader->ToTable();
}

class FileRoundTripTest : public ::testing::TestWithParam<std::string> {};

TEST_P(FileRoundTripTest, SinkThenSource) {
  const std::string format = GetParam();
  TempDir tmp;
  ASSERT_FALSE(tmp.path().empty());
  const fs::path dir = tmp.path() / "out";
  std::vector<std::shared_ptr<arrow::RecordBatch>> part0 = {TestBatch(0), TestBatch(1)};
  std::vector<std::shared_ptr<arrow::RecordBatch>> part1 = {TestBatch(2)};
  {
    auto st = WriteThroughSink(format, dir, 0, 2, part0);
    ASSERT_TRUE(st.ok()) << st;
    st = WriteThroughSink(format, dir, 1, 2, part1);
    ASSERT_TRUE(st.ok()) << st;
  }
  std::string ext;
  SABOT_ASSIGN_OR_FAIL(ext, FileSinkExtension(format));
  const fs::path file0 = dir / ("part-0." + ext);
  const fs::path file1 = dir / ("part-1." + ext);
  ASSERT_TRUE(fs::exists(file0));
  ASSERT_TRUE(fs::exists(file1));
  ASSERT_FALSE(fs::exists(file0.string() + ".inprogress"));

  std::vector<std::shared_ptr<arrow::RecordBatch>> all = part0;
  all.insert(all.end(), part1.begin(), part1.end());
  std::shared_ptr<arrow::Table> expected_all, expected0, expected1;
  SABOT_ASSIGN_OR_FAIL(expected_all, ToTable(all, TestSchema()));
  SABOT_ASSIGN_OR_FAIL(expected0, ToTable(part0, TestSchema()));
  SABOT_ASSIGN_OR_FAIL(expected1, ToTable(part1, TestSchema()));

  FileSourceOptions options;
  options.paths = {dir.string()};
  options.format = format;
  // Text formats carry no types: read them with the schema; binary ones infer it.
  if (format == "csv" || format == "jsonl") options.schema = TestSchema();

  // One instance reads both files in name order.
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  SABOT_ASSIGN_OR_FAIL(batches, ReadThroughSource(options, 0, 1));
  std::shared_ptr<arrow::Table> table;
  SABOT_ASSIGN_OR_FAIL(table, ToTable(batches, TestSchema()));
  ExpectTablesEqual(*expected_all, *table);

  // Two instances: one file each.
  SABOT_ASSIGN_OR_FAIL(batches, ReadThroughSource(options, 0, 2));
  SABOT_ASSIGN_OR_FAIL(table, ToTable(batches, TestSchema()));
  ExpectTablesEqual(*expected0, *table);
  SABOT_ASSIGN_OR_FAIL(batches, ReadThroughSource(options, 1, 2));
  SABOT_ASSIGN_OR_FAIL(table, ToTable(batches, TestSchema()));
  ExpectTablesEqual(*expected1, *table);

  // Arrow's own reader agrees with what the sink wrote.
  SABOT_ASSIGN_OR_FAIL(table, ReadWithArrow(format, file0));
  EXPECT_TRUE(expected0->Equals(*table)) << table->ToString();
  SABOT_ASSIGN_OR_FAIL(table, ReadWithArrow(format, file1));
  EXPECT_TRUE(expected1->Equals(*table)) << table->ToString();
}

INSTANTIATE_TEST_SUITE_P(Formats, FileRoundTripTest,
                         ::testing::Values("parquet", "csv", "jsonl", "ipc"),
                         [](const auto& info) { return info.param; });

TEST(FileSourceTest, InfersCsvAndJsonSchemaFromFirstFile) {
  TempDir tmp;
  WriteText(tmp.path() / "a.csv", "x,y\n1,foo\n2,bar\n");
  WriteText(tmp.path() / "b.csv", "x,y\n3,4\n");  // y would infer as int64 alone
  FileSourceOptions options;
  options.paths = {tmp.path().string()};
  options.format = "csv";
  for (int instance = 0; instance < 2; ++instance) {
    std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
    SABOT_ASSIGN_OR_FAIL(batches, ReadThroughSource(options, instance, 2));
    ASSERT_EQ(batches.size(), 1u);
    EXPECT_EQ(batches[0]->schema()->field(1)->type()->id(), arrow::Type::STRING)
        << "instance " << instance;
  }

  WriteText(tmp.path() / "c.jsonl", "{\"x\":1,\"y\":1.5}\n{\"x\":2,\"y\":null}\n");
  options.paths = {(tmp.path() / "c.jsonl").string()};
  options.format = "jsonl";
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  SABOT_ASSIGN_OR_FAIL(batches, ReadThroughSource(options, 0, 1));
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(batches[0]->num_rows(), 2);
  EXPECT_EQ(batches[0]->schema()->field(1)->type()->id(), arrow::Type::DOUBLE);
}

TEST(FileSourceTest, DirectorySplitsFilesAcrossInstances) {
  TempDir tmp;
  const fs::path dir = tmp.path() / "in";
  for (int i = 0; i < 3; ++i) {
    auto st = WriteThroughSink("ipc", dir, i, 3, {TestBatch(i)});
    ASSERT_TRUE(st.ok()) << st;
  }
  // Files the source must skip: they would fail to parse.
  WriteText(dir / "_SUCCESS", "not arrow");
  WriteText(dir / ".hidden", "not arrow");
  WriteText(dir / "part-9.arrow.inprogress", "not arrow");
  fs::create_directory(dir / "subdir");

  FileSourceOptions options;
  options.paths = {dir.string()};
  options.format = "ipc";
  std::set<int64_t> ids[2];
  for (int instance = 0; instance < 2; ++instance) {
    std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
    SABOT_ASSIGN_OR_FAIL(batches, ReadThroughSource(options, instance, 2));
    for (const auto& batch : batches) {
      const auto& col = static_cast<const arrow::Int64Array&>(*batch->column(0));
      for (int64_t r = 0; r < col.length(); ++r) ids[instance].insert(col.Value(r));
    }
  }
  // Instance 0 reads files 0 and 2 (ids 0..2, 6..8), instance 1 file 1 (ids 3..5).
  EXPECT_EQ(ids[0], (std::set<int64_t>{0, 1, 2, 6, 7, 8}));
  EXPECT_EQ(ids[1], (std::set<int64_t>{3, 4, 5}));

  // More instances than files: the extra instance ends at once.
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  SABOT_ASSIGN_OR_FAIL(batches, ReadThroughSource(options, 3, 4));
  EXPECT_TRUE(batches.empty());
}

TEST(FileSourceTest, SlicesToBatchSize) {
  TempDir tmp;
  std::vector<int64_t> values(100);
  for (int i = 0; i < 100; ++i) values[static_cast<size_t>(i)] = i;
  arrow::Int64Builder builder;
  ASSERT_TRUE(builder.AppendValues(values).ok());
  std::shared_ptr<arrow::Array> array;
  ASSERT_TRUE(builder.Finish(&array).ok());
  auto batch = arrow::RecordBatch::Make(
      arrow::schema({arrow::field("v", arrow::int64())}), 100, {array});
  for (const std::string format : {"ipc", "parquet", "csv", "jsonl"}) {
    const fs::path dir = tmp.path() / format;
    auto st = WriteThroughSink(format, dir, 0, 1, {batch});
    ASSERT_TRUE(st.ok()) << st;
    FileSourceOptions options;
    options.paths = {dir.string()};
    options.format = format;
    options.batch_size = 30;
    std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
    SABOT_ASSIGN_OR_FAIL(batches, ReadThroughSource(options, 0, 1));
    int64_t total = 0;
    for (const auto& b : batches) {
      EXPECT_LE(b->num_rows(), 30) << format;
      total += b->num_rows();
    }
    EXPECT_EQ(total, 100) << format;
    EXPECT_GE(batches.size(), 4u) << format;
  }
}

TEST(FileSourceTest, RegistryCreatesSourceAndSink) {
  OperatorRegistry registry;
  RegisterFileSource(&registry);
  RegisterFileSink(&registry);
  EXPECT_TRUE(registry.IsSource("file_source"));
  EXPECT_FALSE(registry.IsSource("file_sink"));

  PlanNode node;
  node.kind = "file_source";
  node.name = "file_source#7";
  auto options = std::make_shared<FileSourceOptions>();
  options->paths = {"/tmp/x"};
  options->format = "xml";
  node.options = options;
  auto made = registry.MakeSource(node, 0, 1);
  ASSERT_FALSE(made.ok());
  EXPECT_NE(made.status().message().find("file_source#7"), std::string::npos);
  EXPECT_NE(made.status().message().find("xml"), std::string::npos);
  EXPECT_NE(options->ToString().find("\"format\":\"xml\""), std::string::npos);

  options->format = "csv";
  EXPECT_TRUE(registry.MakeSource(node, 0, 1).ok());

  PlanNode sink_node;
  sink_node.kind = "file_sink";
  sink_node.name = "file_sink#8";
  auto sink_options = std::make_shared<FileSinkOptions>();
  sink_options->path = "/tmp/y";
  sink_options->format = "parquet";
  sink_node.options = sink_options;
  EXPECT_TRUE(registry.MakeOperator(sink_node, 1, 2).ok());
}

arrow::Status ReadStatus(const FileSourceOptions& options, int instance = 0,
                         int parallelism = 1) {
  return ReadThroughSource(options, instance, parallelism).status();
}

void ExpectErrorMentions(const arrow::Status& st, const std::vector<std::string>& parts) {
  ASSERT_FALSE(st.ok());
  for (const auto& part : parts) {
    EXPECT_NE(st.message().find(part), std::string::npos)
        << "'" << part << "' not in: " << st.ToString();
  }
}

TEST(FileSourceTest, JsonLinesTemporalColumnsRoundTrip) {
  TempDir tmp;
  auto inner =
      arrow::struct_({arrow::field("at", arrow::timestamp(arrow::TimeUnit::NANO)),
                      arrow::field("days", arrow::list(arrow::date32()))});
  auto schema = arrow::schema(
      {arrow::field("d32", arrow::date32()), arrow::field("d64", arrow::date64()),
       arrow::field("t32", arrow::time32(arrow::TimeUnit::SECOND)),
       arrow::field("dur", arrow::duration(arrow::TimeUnit::MILLI)),
       arrow::field("nested", inner)});
  auto batch = arrow::RecordBatch::Make(
      schema, 3,
      {FromJson(arrow::date32(), "[0, -719162, null]"),
       FromJson(arrow::date64(), "[86400000, null, -86400000]"),
       FromJson(arrow::time32(arrow::TimeUnit::SECOND), "[1, 86399, null]"),
       FromJson(arrow::duration(arrow::TimeUnit::MILLI), "[-5, null, 7]"),
       FromJson(inner, R"([{"at": 1700000000000000001, "days": [1, null, 19000]},
                          null, {"at": null, "days": []}])")});
  const fs::path dir = tmp.path() / "t";
  auto st = WriteThroughSink("jsonl", dir, 0, 1, {batch});
  ASSERT_TRUE(st.ok()) << st;
  FileSourceOptions options;
  options.paths = {dir.string()};
  options.format = "jsonl";
  options.schema = schema;
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  SABOT_ASSIGN_OR_FAIL(batches, ReadThroughSource(options, 0, 1));
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_TRUE(batches[0]->Equals(*batch)) << batches[0]->ToString();

  WriteText(dir / "part-0.jsonl", "{\"d32\":\"2024-02-30\"}\n");
  ExpectErrorMentions(ReadStatus(options), {"part-0.jsonl", "2024-02-30", "d32"});
}

// ---- Bad input: every failure names the operator and the file. ----

TEST(FileSourceErrorTest, MissingFile) {
  TempDir tmp;
  FileSourceOptions options;
  options.paths = {(tmp.path() / "nope.parquet").string()};
  options.format = "parquet";
  arrow::Status st = ReadStatus(options);
  EXPECT_TRUE(st.IsIOError()) << st;
  ExpectErrorMentions(st, {"file_source#0", "nope.parquet"});
}

TEST(FileSourceErrorTest, UnknownFormat) {
  FileSourceOptions options;
  options.paths = {"/tmp"};
  options.format = "xml";
  auto made = MakeFileSourceReader(options, 0, 1);
  ASSERT_FALSE(made.ok());
  EXPECT_TRUE(made.status().IsInvalid());
  ExpectErrorMentions(made.status(), {"xml"});
  FileSinkOptions sink_options;
  sink_options.path = "/tmp";
  sink_options.format = "xml";
  ExpectErrorMentions(MakeFileSink(sink_options, 0).status(), {"xml"});
}

TEST(FileSourceErrorTest, TruncatedParquet) {
  TempDir tmp;
  const fs::path dir = tmp.path() / "p";
  auto st = WriteThroughSink("parquet", dir, 0, 1, {TestBatch(0), TestBatch(1)});
  ASSERT_TRUE(st.ok()) << st;
  const fs::path file = dir / "part-0.parquet";
  fs::resize_file(file, fs::file_size(file) / 2);
  FileSourceOptions options;
  options.paths = {file.string()};
  options.format = "parquet";
  ExpectErrorMentions(ReadStatus(options), {"file_source#0", file.string()});
}

TEST(FileSourceErrorTest, CsvWrongColumnCount) {
  TempDir tmp;
  const fs::path file = tmp.path() / "bad.csv";
  WriteText(file, "a,b\n1,2\n3,4,5\n");
  FileSourceOptions options;
  options.paths = {file.string()};
  options.format = "csv";
  arrow::Status st = ReadStatus(options);
  EXPECT_TRUE(st.IsInvalid()) << st;
  ExpectErrorMentions(st, {"file_source#0", file.string(), "Row #3"});
}

TEST(FileSourceErrorTest, CsvUnparsableValue) {
  TempDir tmp;
  const fs::path file = tmp.path() / "bad_value.csv";
  WriteText(file, "a\n1\nseven\n");
  FileSourceOptions options;
  options.paths = {file.string()};
  options.format = "csv";
  options.schema = arrow::schema({arrow::field("a", arrow::int64())});
  ExpectErrorMentions(ReadStatus(options), {"file_source#0", file.string(), "seven"});
}

TEST(FileSourceErrorTest, MalformedJsonLine) {
  TempDir tmp;
  const fs::path file = tmp.path() / "bad.jsonl";
  WriteText(file, "{\"a\":1}\n{\"a\":\n");
  FileSourceOptions options;
  options.paths = {file.string()};
  options.format = "jsonl";
  ExpectErrorMentions(ReadStatus(options), {"file_source#0", file.string()});
}

TEST(FileSourceErrorTest, GarbageIpc) {
  TempDir tmp;
  const fs::path file = tmp.path() / "garbage.arrow";
  FileSourceOptions options;
  options.paths = {file.string()};
  options.format = "ipc";
  WriteText(file, "this is not Arrow IPC data, just text\n");
  ExpectErrorMentions(ReadStatus(options), {"file_source#0", file.string()});
  WriteText(file, std::string("ARROW1\0\0 and then garbage that is not a footer", 46));
  ExpectErrorMentions(ReadStatus(options), {"file_source#0", file.string()});
  std::string stream_like("\xff\xff\xff\xff\x10\x00\x00\x00", 8);
  WriteText(file, stream_like + std::string(16, 'z'));
  ExpectErrorMentions(ReadStatus(options), {"file_source#0", file.string()});
  WriteText(file, "");
  ExpectErrorMentions(ReadStatus(options), {"file_source#0", file.string()});
}

TEST(FileSourceErrorTest, SchemaMismatchBetweenFiles) {
  TempDir tmp;
  WriteText(tmp.path() / "1.csv", "a,b\n1,2\n");
  WriteText(tmp.path() / "2.csv", "a,c\n3,4\n");
  FileSourceOptions options;
  options.paths = {tmp.path().string()};
  options.format = "csv";
  // One instance meets both files; with two, instance 1 compares against file 1.
  ExpectErrorMentions(ReadStatus(options, 0, 1),
                      {"file_source#0", "1.csv", "2.csv", "'c"});
  ExpectErrorMentions(ReadStatus(options, 1, 2), {"1.csv", "2.csv", "'c"});

  // Parquet/IPC: the type differs.
  const fs::path dir = tmp.path() / "ipc";
  auto batch_a =
      arrow::RecordBatch::Make(arrow::schema({arrow::field("v", arrow::int64())}), 1,
                               {FromJson(arrow::int64(), "[1]")});
  auto batch_b =
      arrow::RecordBatch::Make(arrow::schema({arrow::field("v", arrow::utf8())}), 1,
                               {FromJson(arrow::utf8(), "[\"x\"]")});
  ASSERT_TRUE(WriteThroughSink("ipc", dir, 0, 2, {batch_a}).ok());
  ASSERT_TRUE(WriteThroughSink("ipc", dir, 1, 2, {batch_b}).ok());
  options.paths = {dir.string()};
  options.format = "ipc";
  ExpectErrorMentions(ReadStatus(options), {"part-0.arrow", "part-1.arrow", "v: string"});

  // A given schema that the file does not match.
  options.schema = arrow::schema({arrow::field("w", arrow::int64())});
  options.paths = {(dir / "part-0.arrow").string()};
  ExpectErrorMentions(ReadStatus(options), {"part-0.arrow", "'w: int64'"});
}

TEST(FileSinkTest, SchemaChangeIsAnError) {
  TempDir tmp;
  FileSinkOptions options;
  options.path = (tmp.path() / "out").string();
  options.format = "csv";
  std::unique_ptr<Operator> sink;
  SABOT_ASSIGN_OR_FAIL(sink, MakeFileSink(options, 0));
  OperatorContext ctx = MakeContext("file_sink#4", 0, 1);
  NullCollector collector;
  ASSERT_TRUE(sink->Open(&ctx).ok());
  ASSERT_TRUE(sink->ProcessBatch(0, TestBatch(0), &ctx, &collector).ok());
  auto other =
      arrow::RecordBatch::Make(arrow::schema({arrow::field("id", arrow::utf8())}), 1,
                               {FromJson(arrow::utf8(), "[\"x\"]")});
  arrow::Status st = sink->ProcessBatch(0, other, &ctx, &collector);
  ExpectErrorMentions(st, {"file_sink#4", "part-0.csv", "id"});
  // The in-progress file only becomes visible on Close.
  EXPECT_FALSE(fs::exists(tmp.path() / "out" / "part-0.csv"));
  ASSERT_TRUE(sink->Close(&ctx, &collector).ok());
  EXPECT_TRUE(fs::exists(tmp.path() / "out" / "part-0.csv"));
}

// ---- JSON lines ----

std::string EncodeColumn(const std::shared_ptr<arrow::Array>& array,
                         const std::string& name = "c") {
  auto batch = arrow::RecordBatch::Make(
      arrow::schema({arrow::field(name, array->type())}), array->length(), {array});
  std::string out;
  arrow::Status st = AppendJsonLines(*batch, &out);
  EXPECT_TRUE(st.ok()) << st;
  return out;
}

TEST(JsonLinesTest, EscapesStrings) {
  auto array = FromJson(
      arrow::utf8(), R"(["a\"b\\c", "x\ny\r\tz", "\u0001\u001f", "h\u00e9 \u20ac", ""])");
  EXPECT_EQ(EncodeColumn(array, "k\"ey"),
            "{\"k\\\"ey\":\"a\\\"b\\\\c\"}\n"
            "{\"k\\\"ey\":\"x\\ny\\r\\tz\"}\n"
            "{\"k\\\"ey\":\"\\u0001\\u001f\"}\n"
            "{\"k\\\"ey\":\"h\xC3\xA9 \xE2\x82\xAC\"}\n"
            "{\"k\\\"ey\":\"\"}\n");
}

TEST(JsonLinesTest, NullsAndScalars) {
  auto ints = FromJson(arrow::int32(), "[1, null, -7]");
  auto bools = FromJson(arrow::boolean(), "[true, false, null]");
  auto nulls = std::make_shared<arrow::NullArray>(3);
  auto batch =
      arrow::RecordBatch::Make(arrow::schema({arrow::field("i", arrow::int32()),
                                              arrow::field("b", arrow::boolean()),
                                              arrow::field("n", arrow::null())}),
                               3, {ints, bools, nulls});
  std::string out;
  ASSERT_TRUE(AppendJsonLines(*batch, &out).ok());
  EXPECT_EQ(out,
            "{\"i\":1,\"b\":true,\"n\":null}\n"
            "{\"i\":null,\"b\":false,\"n\":null}\n"
            "{\"i\":-7,\"b\":null,\"n\":null}\n");
  EXPECT_EQ(EncodeColumn(FromJson(arrow::uint64(), "[18446744073709551615]")),
            "{\"c\":18446744073709551615}\n");
}

TEST(JsonLinesTest, Floats) {
  arrow::DoubleBuilder builder;
  ASSERT_TRUE(builder
                  .AppendValues({0.1, 1.0, -2.5, 1e300, 5e-324,
                                 std::numeric_limits<double>::quiet_NaN(),
                                 std::numeric_limits<double>::infinity(),
                                 -std::numeric_limits<double>::infinity()})
                  .ok());
  std::shared_ptr<arrow::Array> doubles;
  ASSERT_TRUE(builder.Finish(&doubles).ok());
  EXPECT_EQ(EncodeColumn(doubles),
            "{\"c\":0.1}\n{\"c\":1.0}\n{\"c\":-2.5}\n{\"c\":1e+300}\n{\"c\":5e-324}\n"
            "{\"c\":null}\n{\"c\":null}\n{\"c\":null}\n");
  EXPECT_EQ(EncodeColumn(FromJson(arrow::float32(), "[0.1, 3]")),
            "{\"c\":0.1}\n{\"c\":3.0}\n");
}

TEST(JsonLinesTest, TemporalAndDecimal) {
  EXPECT_EQ(EncodeColumn(FromJson(arrow::date32(), "[0, -1, 19000, 11016, 2932896]")),
            "{\"c\":\"1970-01-01\"}\n{\"c\":\"1969-12-31\"}\n{\"c\":\"2022-01-08\"}\n"
            "{\"c\":\"2000-02-29\"}\n{\"c\":\"9999-12-31\"}\n");
  EXPECT_EQ(
      EncodeColumn(FromJson(arrow::timestamp(arrow::TimeUnit::MILLI), "[1700000000123]")),
      "{\"c\":1700000000123}\n");
  EXPECT_EQ(EncodeColumn(FromJson(arrow::decimal128(6, 2), R"(["12.34", "-0.05"])")),
            "{\"c\":\"12.34\"}\n{\"c\":\"-0.05\"}\n");
  EXPECT_EQ(EncodeColumn(FromJson(arrow::binary(), R"(["ab", "abc", "a"])")),
            "{\"c\":\"YWI=\"}\n{\"c\":\"YWJj\"}\n{\"c\":\"YQ==\"}\n");
}

TEST(JsonLinesTest, NestedStructAndList) {
  auto type = arrow::struct_({arrow::field("x", arrow::int32()),
                              arrow::field("tags", arrow::list(arrow::utf8()))});
  auto array =
      FromJson(type, R"([{"x": 1, "tags": ["a", "b"]}, null, {"x": null, "tags": []},
                {"x": 4, "tags": null}, {"x": 5, "tags": ["q\"", null]}])");
  const std::string all = EncodeColumn(array, "s");
  EXPECT_EQ(all,
            "{\"s\":{\"x\":1,\"tags\":[\"a\",\"b\"]}}\n"
            "{\"s\":null}\n"
            "{\"s\":{\"x\":null,\"tags\":[]}}\n"
            "{\"s\":{\"x\":4,\"tags\":null}}\n"
            "{\"s\":{\"x\":5,\"tags\":[\"q\\\"\",null]}}\n");
  // A slice renders exactly its rows (offsets into struct children and list values).
  EXPECT_EQ(EncodeColumn(array->Slice(3, 2), "s"),
            "{\"s\":{\"x\":4,\"tags\":null}}\n"
            "{\"s\":{\"x\":5,\"tags\":[\"q\\\"\",null]}}\n");
  auto lists =
      FromJson(arrow::list(arrow::list(arrow::int64())), "[[[1], [2, 3]], [[]], [[4]]]");
  EXPECT_EQ(EncodeColumn(lists->Slice(1)), "{\"c\":[[]]}\n{\"c\":[[4]]}\n");
  auto map = FromJson(arrow::map(arrow::utf8(), arrow::int32()), R"([[["k", 1]]])");
  EXPECT_EQ(EncodeColumn(map), "{\"c\":[{\"key\":\"k\",\"value\":1}]}\n");
}

TEST(JsonLinesTest, ParsesBackWithArrowReader) {
  auto schema = arrow::schema(
      {arrow::field("i", arrow::int64()), arrow::field("d", arrow::float64()),
       arrow::field("s", arrow::utf8()), arrow::field("b", arrow::boolean()),
       arrow::field("st",
                    arrow::struct_({arrow::field("x", arrow::int64()),
                                    arrow::field("l", arrow::list(arrow::float64()))})),
       arrow::field("dec", arrow::decimal128(7, 3))});
  auto batch = arrow::RecordBatch::Make(
      schema, 3,
      {FromJson(arrow::int64(), "[1, null, 3]"),
       FromJson(arrow::float64(), "[0.1, 2, null]"),
       FromJson(arrow::utf8(), R"(["q\"uote\\", "new\nline \u0002", null])"),
       FromJson(arrow::boolean(), "[true, null, false]"),
       FromJson(schema->field(4)->type(),
                R"([{"x": 1, "l": [1.5, null]}, null, {"x": null, "l": []}])"),
       FromJson(arrow::decimal128(7, 3), R"(["1.500", "-1234.001", null])")});
  std::string text;
  ASSERT_TRUE(AppendJsonLines(*batch, &text).ok());
  auto parse = arrow::json::ParseOptions::Defaults();
  parse.explicit_schema = schema;
  std::shared_ptr<arrow::json::TableReader> reader;
  SABOT_ASSIGN_OR_FAIL(
      reader,
      arrow::json::TableReader::Make(
          arrow::default_memory_pool(),
          std::make_shared<arrow::io::BufferReader>(arrow::Buffer::FromString(text)),
          arrow::json::ReadOptions::Defaults(), parse));
  std::shared_ptr<arrow::Table> table;
  SABOT_ASSIGN_OR_FAIL(table, reader->Read());
  std::shared_ptr<arrow::Table> expected;
  SABOT_ASSIGN_OR_FAIL(expected, arrow::Table::FromRecordBatches({batch}));
  EXPECT_TRUE(expected->Equals(*table)) << text << "\n" << table->ToString();
}

}  // namespace
}  // namespace sabot
