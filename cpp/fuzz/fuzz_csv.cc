// libFuzzer target: the csv decoder (flat schema) and the string decoder.
#include "fuzz_messages.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sabot;
  auto messages = fuzz::SplitMessages(data, size);
  for (const char* name : {"csv", "string"}) {
    FormatOptions options;
    options.name = name;
    options.schema = fuzz::FlatSchema();
    auto decoder = MakeDecoder(options, arrow::default_memory_pool());
    if (!decoder.ok()) fuzz::Violation("MakeDecoder");
    fuzz::DecodeAndCheck(decoder->get(), *messages);
  }
  return 0;
}
