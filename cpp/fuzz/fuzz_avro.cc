// libFuzzer target: the avro decoder (writer schema derived from the rich row
// schema), plain and with the Confluent header.
#include "fuzz_messages.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sabot;
  auto messages = fuzz::SplitMessages(data, size);
  for (bool confluent : {false, true}) {
    FormatOptions options;
    options.name = "avro";
    options.schema = fuzz::RichSchema();
    options.confluent_wire_format = confluent;
    auto decoder = MakeDecoder(options, arrow::default_memory_pool());
    if (!decoder.ok()) fuzz::Violation("MakeDecoder");
    fuzz::DecodeAndCheck(decoder->get(), *messages);
  }
  return 0;
}
