// Writes seed corpora for the fuzz targets: valid messages made by the
// encoders, one file per seed under <dir>/<format>/. Run by scripts/fuzz.sh.
#include <arrow/json/from_string.h>

#include <fstream>

#include "fuzz_messages.h"

namespace {

using namespace sabot;

std::shared_ptr<arrow::RecordBatch> BatchOf(const std::shared_ptr<arrow::Schema>& schema,
                                            const std::vector<std::string>& columns) {
  arrow::ArrayVector arrays;
  for (int i = 0; i < schema->num_fields(); ++i) {
    arrays.push_back(arrow::json::ArrayFromJSONString(schema->field(i)->type(),
                                                      columns[static_cast<size_t>(i)])
                         .ValueOrDie());
  }
  return arrow::RecordBatch::Make(schema, arrays[0]->length(), arrays);
}

std::vector<std::string> Encode(const std::string& name,
                                const std::shared_ptr<arrow::RecordBatch>& batch,
                                bool confluent = false) {
  FormatOptions options;
  options.name = name;
  options.confluent_wire_format = confluent;
  options.confluent_schema_id = 7;
  auto encoder = MakeEncoder(options, batch->schema(), nullptr).ValueOrDie();
  std::vector<std::string> out;
  auto encoded = encoder->Encode(*batch).ValueOrDie();
  for (int64_t i = 0; i < encoded->length(); ++i) out.emplace_back(encoded->GetView(i));
  return out;
}

void Write(const std::string& dir, int index, const std::string& bytes) {
  std::ofstream(dir + "/seed_" + std::to_string(index), std::ios::binary) << bytes;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_corpus DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  auto rich = BatchOf(
      fuzz::RichSchema(),
      {"[1, -2, 900719925474099, 0]", "[7, null, -2147483648, 2147483647]",
       "[1.5, -0.1, null, 1e300]", "[true, false, null, true]",
       R"(["plain", "quote \" comma,", null, "üñí"])", R"(["abc", "", null, "\u0000"])",
       "[0, 19000, null, -1]", "[0, 1700000000123, null, -1000]",
       R"([{"x": 1, "label": "a"}, null, {"x": null, "label": null},
                           {"x": -5, "label": "z"}])",
       "[[1, 2], [], null, [null, 3]]",
       R"([[["a", 1], ["b", null]], [], null, [["k", 5]]])"});
  auto flat = BatchOf(fuzz::FlatSchema(),
                      {"[1, null, -3]", "[7, -32768, null]", "[1.5, -0.1, null]",
                       "[true, false, null]", R"(["plain", "a \"b\", c", ""])",
                       "[0, 19000, null]", "[0, 1700000000123456, null]"});
  int n = 0;
  const auto json = Encode("json", rich);
  Write(dir + "/json", n++, fuzz::JoinMessages(json));
  for (const auto& m : json) Write(dir + "/json", n++, m);
  const auto avro = Encode("avro", rich);
  Write(dir + "/avro", n++, fuzz::JoinMessages(avro));
  for (const auto& m : avro) Write(dir + "/avro", n++, m);
  for (const auto& m : Encode("avro", rich, /*confluent=*/true))
    Write(dir + "/avro", n++, m);
  Write(dir + "/ipc", n++, fuzz::JoinMessages(Encode("ipc", rich)));
  Write(dir + "/ipc", n++,
        fuzz::JoinMessages(
            {Encode("ipc", rich->Slice(0, 1))[0], Encode("ipc", rich->Slice(1, 3))[0]}));
  Write(dir + "/ipc", n++, Encode("ipc", flat)[0]);
  const auto csv = Encode("csv", flat);
  Write(dir + "/csv", n++, fuzz::JoinMessages(csv));
  for (const auto& m : csv) Write(dir + "/csv", n++, m);
  std::printf("wrote %d seeds under %s\n", n, dir.c_str());
  return 0;
}
