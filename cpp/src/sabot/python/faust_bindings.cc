// The Faust layer's value decoder: decodes a binary column of message values
// (the raw Kafka values sabot.kafka.BatchConsumer returns) into Arrow rows with
// the engine's format decoders (formats/format.h), lazily, only when an agent
// iterates `stream.batches()` on a topic whose values the consumer did not
// decode (docs/design/faust.md). The GIL is released while decoding.
//
/// Threading contract: one decoder per Faust source, used from the event loop
/// thread only.
#include "sabot/python/faust_bindings.h"

#include <arrow/api.h>
#include <arrow/c/abi.h>
#include <arrow/c/bridge.h>
#include <malloc.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "sabot/formats/format.h"
#include "sabot/python/binding_util.h"
#include "sabot/python/faust_columns.h"
#include "sabot/python/faust_producer.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace sabot {
namespace {

using py::Check;
using py::Unwrap;

/// Decodes a binary column of message values into rows (formats/format.h), for
/// `stream.batches()` on topics whose values the consumer did not decode.
class FaustDecoder {
 public:
  explicit FaustDecoder(const nb::dict& f) {
    FormatOptions options;
    options.name = nb::cast<std::string>(f["name"]);
    if (f.contains("schema") && !f["schema"].is_none()) {
      options.schema = py::SchemaFromCapsule(f["schema"]);
    }
    decoder_ = Unwrap(MakeDecoder(options, arrow::default_memory_pool()));
  }

  /// (rows, errors): rows line up with the input only when errors is empty.
  nb::object Decode(nb::handle array_capsules) {
    auto array = py::ArrayFromCapsules(array_capsules, "FaustDecoder.decode");
    if (array->type_id() != arrow::Type::BINARY) {
      throw nb::type_error("FaustDecoder.decode expects a binary array");
    }
    arrow::Result<DecodedBatch> r;
    {
      nb::gil_scoped_release release;
      r = decoder_->Decode(static_cast<const arrow::BinaryArray&>(*array));
    }
    DecodedBatch decoded = Unwrap(std::move(r));
    std::vector<std::tuple<int64_t, std::string>> errors;
    for (const auto& e : decoded.errors) errors.emplace_back(e.message_index, e.reason);
    nb::object rows = nb::none();
    if (decoded.rows) rows = py::BatchToCapsules(decoded.rows);
    return nb::make_tuple(rows, nb::cast(errors));
  }

 private:
  std::unique_ptr<Decoder> decoder_;
};

}  // namespace

void RegisterFaustBindings(nb::module_& m) {
  nb::class_<FaustDecoder>(m, "FaustDecoder")
      .def(nb::init<const nb::dict&>(), "format"_a)
      .def("decode", &FaustDecoder::Decode, "values"_a,
           "(rows capsules | None, errors [(index, reason)])");
  m.def(
      "malloc_arena_max",
      [](int n) {
#ifdef M_ARENA_MAX
        return mallopt(M_ARENA_MAX, n) == 1;
#else
        return false;
#endif
      },
      "n"_a,
      "Caps glibc's malloc arenas (mallopt M_ARENA_MAX) for the Faust worker's "
      "memory-lean defaults; False where unsupported.");
  py::RegisterFaustColumns(m);   // KafkaPolled, arrow_to_pylist (faust_columns.cc)
  py::RegisterFaustProducer(m);  // FaustProducer (faust_producer.cc)
}

}  // namespace sabot
