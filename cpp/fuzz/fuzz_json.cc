// libFuzzer target: the json decoder, against a fixed schema and with inference.
#include "fuzz_messages.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sabot;
  auto messages = fuzz::SplitMessages(data, size);
  for (bool infer : {false, true}) {
    FormatOptions options;
    options.name = "json";
    if (!infer) options.schema = fuzz::RichSchema();
    auto decoder = MakeDecoder(options, arrow::default_memory_pool());
    if (!decoder.ok()) fuzz::Violation("MakeDecoder");
    fuzz::DecodeAndCheck(decoder->get(), *messages);
  }
  return 0;
}
