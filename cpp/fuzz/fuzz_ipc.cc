// libFuzzer target: the ipc decoder, schema taken from the first good message.
#include "fuzz_messages.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sabot;
  auto messages = fuzz::SplitMessages(data, size);
  FormatOptions options;
  options.name = "ipc";
  auto decoder = MakeDecoder(options, arrow::default_memory_pool());
  if (!decoder.ok()) fuzz::Violation("MakeDecoder");
  fuzz::DecodeAndCheck(decoder->get(), *messages);
  return 0;
}
