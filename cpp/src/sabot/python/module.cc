// Python bindings (nanobind). The only place where Arrow Status becomes a Python
// exception. Batches cross the boundary zero-copy through the Arrow C Data
// Interface (PyCapsules "arrow_schema" / "arrow_array" / "arrow_array_stream").
// Python callables are invoked with the GIL held once per batch, never per row.
#include <arrow/c/abi.h>
#include <arrow/c/bridge.h>
#include <arrow/compute/expression.h>
#include <nanobind/nanobind.h>
#include <nanobind/stl/function.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "sabot/api/datastream.h"
#include "sabot/connectors/console/console_sink.h"
#include "sabot/connectors/file/file_sink.h"
#include "sabot/connectors/file/file_source.h"
#include "sabot/connectors/nexmark/nexmark_source.h"
#include "sabot/python/binding_util.h"
#include "sabot/python/changelog_bindings.h"
#include "sabot/python/checkpoint_bindings.h"
#include "sabot/python/faust_bindings.h"
#include "sabot/python/faust_store_bindings.h"
#include "sabot/python/join_bindings.h"
#include "sabot/python/kafka_bindings.h"
#include "sabot/python/lookup_bindings.h"
#include "sabot/python/over_files_bindings.h"  // over_rows, partitioned files
#include "sabot/python/regular_join_bindings.h"
#include "sabot/python/state_bindings.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace sabot {
namespace {

// --- error translation -----------------------------------------------------

class JobError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

void ThrowIfError(const arrow::Status& st) {
  if (!st.ok()) throw JobError(st.ToString());
}

template <typename T>
T ValueOrThrow(arrow::Result<T> r) {
  ThrowIfError(r.status());
  return r.MoveValueUnsafe();
}

// Converts the pending Python exception into a Status (call with the GIL held).
arrow::Status StatusFromPython(const nb::python_error& e, const std::string& what) {
  return arrow::Status::ExecutionError(what, " raised ", e.what());
}

// --- C Data Interface capsules -----------------------------------------------

using py::ReleaseArrayCapsule;
using py::ReleaseSchemaCapsule;
using py::ReleaseStreamCapsule;

// Wraps what `export_fn(array, schema)` exports in a (schema capsule, array
// capsule) pair, the __arrow_c_array__ protocol. GIL held.
template <typename ExportFn>
arrow::Result<nb::tuple> ToCapsules(ExportFn&& export_fn) {
  auto* c_schema = new ArrowSchema;
  auto* c_array = new ArrowArray;
  c_schema->release = nullptr;
  c_array->release = nullptr;
  auto st = export_fn(c_array, c_schema);
  if (!st.ok()) {
    delete c_schema;
    delete c_array;
    return st;
  }
  nb::object schema_capsule =
      nb::steal(PyCapsule_New(c_schema, "arrow_schema", ReleaseSchemaCapsule));
  nb::object array_capsule =
      nb::steal(PyCapsule_New(c_array, "arrow_array", ReleaseArrayCapsule));
  return nb::make_tuple(schema_capsule, array_capsule);
}

arrow::Result<nb::tuple> BatchToCapsules(
    const std::shared_ptr<arrow::RecordBatch>& batch) {
  return ToCapsules([&](ArrowArray* a, ArrowSchema* s) {
    return arrow::ExportRecordBatch(*batch, a, s);
  });
}

arrow::Result<nb::tuple> ArrayToCapsules(const arrow::Array& array) {
  return ToCapsules(
      [&](ArrowArray* a, ArrowSchema* s) { return arrow::ExportArray(array, a, s); });
}

// The C structs inside a (schema capsule, array capsule) pair that Python code
// returned (from __arrow_c_array__); `what` names the function for errors.
arrow::Result<std::pair<ArrowArray*, ArrowSchema*>> CapsulePair(nb::handle pair,
                                                                const std::string& what,
                                                                const char* expected) {
  if (!nb::isinstance<nb::tuple>(pair) || nb::len(pair) != 2) {
    return arrow::Status::TypeError(what, " must return a ", expected);
  }
  auto* c_schema =
      static_cast<ArrowSchema*>(PyCapsule_GetPointer(pair[0].ptr(), "arrow_schema"));
  auto* c_array =
      static_cast<ArrowArray*>(PyCapsule_GetPointer(pair[1].ptr(), "arrow_array"));
  if (!c_schema || !c_array) {
    PyErr_Clear();
    return arrow::Status::TypeError(what,
                                    " returned something that is not an Arrow array");
  }
  return std::make_pair(c_array, c_schema);
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> BatchFromCapsules(
    nb::handle pair, const std::string& what) {
  ARROW_ASSIGN_OR_RAISE(auto c, CapsulePair(pair, what, "pyarrow.RecordBatch"));
  return arrow::ImportRecordBatch(c.first, c.second);
}

arrow::Result<std::shared_ptr<arrow::Schema>> SchemaFromCapsule(nb::handle capsule) {
  auto* c_schema =
      static_cast<ArrowSchema*>(PyCapsule_GetPointer(capsule.ptr(), "arrow_schema"));
  if (!c_schema) {
    PyErr_Clear();
    return arrow::Status::TypeError("expected an arrow_schema capsule");
  }
  return arrow::ImportSchema(c_schema);
}

nb::object SchemaToCapsule(const std::shared_ptr<arrow::Schema>& schema) {
  auto* c_schema = new ArrowSchema;
  c_schema->release = nullptr;
  ThrowIfError(arrow::ExportSchema(*schema, c_schema));
  return nb::steal(PyCapsule_New(c_schema, "arrow_schema", ReleaseSchemaCapsule));
}

arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>> BatchesFromStreamCapsule(
    nb::handle capsule) {
  auto* c_stream = static_cast<ArrowArrayStream*>(
      PyCapsule_GetPointer(capsule.ptr(), "arrow_array_stream"));
  if (!c_stream) {
    PyErr_Clear();
    return arrow::Status::TypeError("expected an arrow_array_stream capsule");
  }
  ARROW_ASSIGN_OR_RAISE(auto reader, arrow::ImportRecordBatchReader(c_stream));
  return reader->ToRecordBatches();
}

nb::object BatchesToStreamCapsule(
    std::shared_ptr<arrow::Schema> schema,
    std::vector<std::shared_ptr<arrow::RecordBatch>> batches) {
  auto reader =
      ValueOrThrow(arrow::RecordBatchReader::Make(std::move(batches), std::move(schema)));
  auto* c_stream = new ArrowArrayStream;
  c_stream->release = nullptr;
  ThrowIfError(arrow::ExportRecordBatchReader(reader, c_stream));
  return nb::steal(PyCapsule_New(c_stream, "arrow_array_stream", ReleaseStreamCapsule));
}

arrow::compute::Expression ExpressionFromBytes(const nb::bytes& bytes) {
  auto buffer =
      std::make_shared<arrow::Buffer>(reinterpret_cast<const uint8_t*>(bytes.c_str()),
                                      static_cast<int64_t>(bytes.size()));
  // Deserialize copies what it keeps, but keep a private copy to be safe.
  auto copy = ValueOrThrow(
      arrow::Buffer::CopyNonOwned(*buffer, arrow::default_cpu_memory_manager()));
  return ValueOrThrow(
      arrow::compute::Deserialize(std::shared_ptr<arrow::Buffer>(std::move(copy))));
}

// A Python callable kept alive by a C++ std::function: acquire the GIL to copy or
// destroy it, since the function object may die on a worker thread.
struct PyCallable {
  explicit PyCallable(nb::object fn) : fn_(new nb::object(std::move(fn))) {}
  PyCallable(const PyCallable& other) {
    nb::gil_scoped_acquire gil;
    fn_ = new nb::object(*other.fn_);
  }
  PyCallable& operator=(const PyCallable&) = delete;
  ~PyCallable() {
    if (!fn_) return;
    if (!Py_IsInitialized()) return;  // interpreter shut down: leak rather than crash
    nb::gil_scoped_acquire gil;
    delete fn_;
  }
  nb::object* fn_ = nullptr;
};

// Calls adapter(fn, schema_capsule, array_capsule) -> capsule pair or list of them.
BatchFunction MakeBatchFunction(nb::object adapter, std::string what) {
  PyCallable callable(std::move(adapter));
  return [callable, what](const std::shared_ptr<arrow::RecordBatch>& batch)
             -> arrow::Result<std::shared_ptr<arrow::RecordBatch>> {
    nb::gil_scoped_acquire gil;
    try {
      ARROW_ASSIGN_OR_RAISE(nb::tuple args, BatchToCapsules(batch));
      nb::object result = (*callable.fn_)(args[0], args[1]);
      return BatchFromCapsules(result, what);
    } catch (nb::python_error& e) {
      return StatusFromPython(e, what);
    }
  };
}

FlatMapFunction MakeFlatMapFunction(nb::object adapter, std::string what) {
  PyCallable callable(std::move(adapter));
  return [callable, what](const std::shared_ptr<arrow::RecordBatch>& batch)
             -> arrow::Result<std::vector<std::shared_ptr<arrow::RecordBatch>>> {
    nb::gil_scoped_acquire gil;
    try {
      ARROW_ASSIGN_OR_RAISE(nb::tuple args, BatchToCapsules(batch));
      nb::object result = (*callable.fn_)(args[0], args[1]);
      std::vector<std::shared_ptr<arrow::RecordBatch>> out;
      for (nb::handle item : result) {
        ARROW_ASSIGN_OR_RAISE(auto b, BatchFromCapsules(item, what));
        out.push_back(std::move(b));
      }
      return out;
    } catch (nb::python_error& e) {
      return StatusFromPython(e, what);
    }
  };
}

// --- windows -----------------------------------------------------------------

int64_t DictInt(const nb::dict& d, const char* key, int64_t fallback) {
  return d.contains(key) ? nb::cast<int64_t>(d[key]) : fallback;
}

WindowAggregateOptions WindowOptionsFromPython(const nb::dict& w,
                                               const nb::list& aggregates) {
  WindowAggregateOptions o;
  std::string kind = nb::cast<std::string>(w["kind"]);
  using K = WindowSpec::Kind;
  if (kind == "tumbling")
    o.window.kind = K::kTumbling;
  else if (kind == "hopping")
    o.window.kind = K::kHopping;
  else if (kind == "cumulate")
    o.window.kind = K::kCumulate;
  else if (kind == "session")
    o.window.kind = K::kSession;
  else if (kind == "count")
    o.window.kind = K::kCountTumbling;
  else if (kind == "count_sliding")
    o.window.kind = K::kCountSliding;
  else if (kind == "global")
    o.window.kind = K::kGlobal;
  else
    throw nb::value_error(("unknown window kind '" + kind + "'").c_str());
  o.window.size_ms = DictInt(w, "size_ms", 0);
  o.window.slide_ms = DictInt(w, "slide_ms", 0);
  o.window.offset_ms = DictInt(w, "offset_ms", 0);
  o.window.gap_ms = DictInt(w, "gap_ms", 0);
  o.window.count = DictInt(w, "count", 0);
  o.window.count_slide = DictInt(w, "count_slide", 0);
  o.trigger.every_rows = DictInt(w, "trigger_every_rows", 0);
  o.trigger.every_ms = DictInt(w, "trigger_every_ms", 0);
  o.trigger.purge = w.contains("trigger_purge") && nb::cast<bool>(w["trigger_purge"]);
  o.allowed_lateness_ms = DictInt(w, "allowed_lateness_ms", 0);
  if (w.contains("time") && !w["time"].is_none())
    o.time_column = nb::cast<std::string>(w["time"]);
  if (w.contains("time_unit")) o.int_unit = nb::cast<std::string>(w["time_unit"]);
  o.processing_time =
      w.contains("processing_time") && nb::cast<bool>(w["processing_time"]);
  if (w.contains("keys")) o.keys = nb::cast<std::vector<std::string>>(w["keys"]);
  for (nb::handle h : aggregates) {
    nb::dict a = nb::cast<nb::dict>(h);
    AggregateSpec spec;
    spec.function = nb::cast<std::string>(a["function"]);
    spec.column = a["column"].is_none() ? "" : nb::cast<std::string>(a["column"]);
    spec.output = nb::cast<std::string>(a["output"]);
    if (a.contains("udaf") && !a["udaf"].is_none()) {
      PyCallable callable(nb::borrow<nb::object>(a["udaf"]));
      std::string what = "Python aggregate function for '" + spec.output + "'";
      spec.udaf = [callable, what](const std::shared_ptr<arrow::ListArray>& lists)
          -> arrow::Result<std::shared_ptr<arrow::Array>> {
        nb::gil_scoped_acquire gil;
        try {
          ARROW_ASSIGN_OR_RAISE(nb::tuple args, ArrayToCapsules(*lists));
          nb::object result = (*callable.fn_)(args[0], args[1]);
          ARROW_ASSIGN_OR_RAISE(auto c, CapsulePair(result, what, "pyarrow.Array"));
          return arrow::ImportArray(c.first, c.second);
        } catch (nb::python_error& e) {
          return StatusFromPython(e, what);
        }
      };
    }
    o.aggregates.push_back(std::move(spec));
  }
  return o;
}

WatermarkOptions WatermarkOptionsFromPython(const nb::dict& d) {
  WatermarkOptions o;
  o.time_column = nb::cast<std::string>(d["time"]);
  if (d.contains("time_unit")) o.int_unit = nb::cast<std::string>(d["time_unit"]);
  if (d.contains("strategy")) o.strategy = nb::cast<std::string>(d["strategy"]);
  o.max_out_of_orderness_ms = DictInt(d, "max_out_of_orderness_ms", 0);
  o.idle_timeout_ms = DictInt(d, "idle_timeout_ms", 0);
  if (d.contains("split_column") && !d["split_column"].is_none()) {
    o.split_column = nb::cast<std::string>(d["split_column"]);
  }
  o.min_valid_ms = DictInt(d, "min_valid_ms", o.min_valid_ms);
  o.max_valid_ms = DictInt(d, "max_valid_ms", o.max_valid_ms);
  if (d.contains("custom") && !d["custom"].is_none()) {
    PyCallable callable(nb::borrow<nb::object>(d["custom"]));
    o.custom = [callable](const arrow::RecordBatch& batch,
                          int64_t max_ts) -> arrow::Result<std::optional<int64_t>> {
      nb::gil_scoped_acquire gil;
      try {
        ARROW_ASSIGN_OR_RAISE(nb::tuple args,
                              BatchToCapsules(arrow::RecordBatch::Make(
                                  batch.schema(), batch.num_rows(), batch.columns())));
        nb::object result = (*callable.fn_)(args[0], args[1], max_ts);
        if (result.is_none()) return std::nullopt;
        return nb::cast<int64_t>(result);
      } catch (nb::python_error& e) {
        return StatusFromPython(e, "Python watermark function");
      } catch (nb::cast_error&) {
        return arrow::Status::TypeError(
            "the Python watermark function must return an int (ms) or None");
      }
    };
  }
  return o;
}

// --- metrics -----------------------------------------------------------------

nb::dict MetricsToDict(const JobMetrics& m) {
  nb::list operators;
  for (const auto& o : m.operators) {
    nb::dict d;
    d["name"] = o.name;
    d["parallelism"] = o.parallelism;
    d["rows_in"] = o.rows_in;
    d["rows_out"] = o.rows_out;
    d["batches_in"] = o.batches_in;
    d["batches_out"] = o.batches_out;
    d["busy_ms"] = static_cast<double>(o.busy_ns) / 1e6;
    d["side_rows_unconsumed"] = o.side_rows_unconsumed;
    operators.append(d);
  }
  nb::list tasks;
  for (const auto& t : m.tasks) {
    nb::dict d;
    d["name"] = t.name;
    d["state"] = t.state;
    d["busy_ms"] = static_cast<double>(t.busy_ns) / 1e6;
    d["idle_ms"] = static_cast<double>(t.idle_ns) / 1e6;
    d["backpressured_ms"] = static_cast<double>(t.backpressured_ns) / 1e6;
    tasks.append(d);
  }
  nb::dict memory;
  memory["bytes_allocated"] = m.memory.bytes_allocated;
  memory["peak_bytes"] = m.memory.peak_bytes;
  memory["total_bytes_allocated"] = m.memory.total_bytes_allocated;
  memory["num_allocations"] = m.memory.num_allocations;
  memory["cap_bytes"] = m.memory.cap_bytes;
  nb::dict out;
  out["operators"] = operators;
  out["tasks"] = tasks;
  out["memory"] = memory;
  out["elapsed_seconds"] = m.elapsed_seconds;
  out["completed_checkpoints"] = m.completed_checkpoints;
  out["report"] = m.ToString();
  return out;
}

// --- wrappers ----------------------------------------------------------------

struct PyCollect {
  std::shared_ptr<CollectBuffer> buffer;
  nb::object to_stream_capsule(nb::object schema_capsule) const {
    auto batches = buffer->batches();
    std::shared_ptr<arrow::Schema> schema;
    if (!batches.empty()) {
      schema = batches.front()->schema();
    } else if (!schema_capsule.is_none()) {
      schema = ValueOrThrow(SchemaFromCapsule(schema_capsule));
    } else {
      schema = arrow::schema({});
    }
    return BatchesToStreamCapsule(schema, std::move(batches));
  }
};

struct PyJob {
  std::unique_ptr<JobHandle> handle;
  PyJob(std::unique_ptr<JobHandle> h) : handle(std::move(h)) {}
  PyJob(const PyJob&) = delete;
  /// Dropping a running job cancels it and joins its workers; a worker may be
  /// waiting for the GIL (in a Python UDF), so the GIL is released meanwhile.
  ~PyJob() {
    nb::gil_scoped_release release;
    handle.reset();
  }
  nb::dict wait() {
    arrow::Result<JobResult> result;
    {
      nb::gil_scoped_release release;
      result = handle->Wait();
    }
    return MetricsToDict(ValueOrThrow(std::move(result)).metrics);
  }
  nb::dict metrics() const { return MetricsToDict(handle->Metrics()); }
};

nexmark::NexmarkConfig NexmarkConfigFromDict(const nb::dict& d) {
  nexmark::NexmarkConfig c;
  for (auto [k, v] : d) {
    std::string key = nb::cast<std::string>(k);
    if (key == "num_events")
      c.num_events = nb::cast<int64_t>(v);
    else if (key == "first_event_rate")
      c.first_event_rate = nb::cast<int64_t>(v);
    else if (key == "num_generators")
      c.num_generators = nb::cast<int64_t>(v);
    else if (key == "base_time_ms")
      c.base_time_ms = nb::cast<int64_t>(v);
    else if (key == "seed")
      c.seed = nb::cast<uint64_t>(v);
    else if (key == "person_proportion")
      c.person_proportion = nb::cast<int>(v);
    else if (key == "auction_proportion")
      c.auction_proportion = nb::cast<int>(v);
    else if (key == "bid_proportion")
      c.bid_proportion = nb::cast<int>(v);
    else if (key == "hot_auction_ratio")
      c.hot_auction_ratio = nb::cast<int>(v);
    else if (key == "hot_sellers_ratio")
      c.hot_sellers_ratio = nb::cast<int>(v);
    else if (key == "hot_bidders_ratio")
      c.hot_bidders_ratio = nb::cast<int>(v);
    else if (key == "num_in_flight_auctions")
      c.num_in_flight_auctions = nb::cast<int64_t>(v);
    else if (key == "num_active_people")
      c.num_active_people = nb::cast<int64_t>(v);
    else if (key == "out_of_order_group_size")
      c.out_of_order_group_size = nb::cast<int64_t>(v);
    else if (key == "occasional_delay_ms")
      c.occasional_delay_ms = nb::cast<int64_t>(v);
    else if (key == "prob_delayed_event")
      c.prob_delayed_event = nb::cast<double>(v);
    else if (key == "rate_limit")
      c.rate_limit = nb::cast<int64_t>(v);
    else if (key == "batch_size")
      c.batch_size = nb::cast<int64_t>(v);
    else if (key == "view")
      c.view = nb::cast<std::string>(v);
    else
      throw nb::value_error(("unknown Nexmark option '" + key + "'").c_str());
  }
  ThrowIfError(nexmark::ValidateConfig(c));
  return c;
}

}  // namespace
}  // namespace sabot

NB_MODULE(_sabot, m) {
  using namespace sabot;
  m.doc() = "Sabot native core";
  // Jobs referenced from a traceback at exit are freed by the OS; do not warn.
  nb::set_leak_warnings(false);
  ThrowIfError(InitializeRuntime());

  nb::exception<JobError>(m, "JobError", PyExc_RuntimeError);

  nb::class_<PyCollect>(m, "Collected")
      .def("to_stream_capsule", &PyCollect::to_stream_capsule,
           "schema_capsule"_a.none() = nb::none())
      .def_prop_ro("num_rows", [](const PyCollect& c) { return c.buffer->num_rows(); });

  nb::class_<PyJob>(m, "Job")
      .def("wait", &PyJob::wait)
      .def("metrics", &PyJob::metrics)
      .def("cancel", [](PyJob& j) { j.handle->Cancel(); })
      .def("done", [](PyJob& j) { return j.handle->done(); })
      .def("trigger_checkpoint",
           [](PyJob& j, int64_t id) { ThrowIfError(j.handle->TriggerCheckpoint(id)); })
      .def("physical_plan",
           [](PyJob& j) { return j.handle->job()->DescribePhysicalPlan(); })
      .def(  // checkpoint control (python/checkpoint_bindings.cc)
          "native_job", [](PyJob& j) { return j.handle->job(); },
          nb::rv_policy::reference_internal);

  nb::class_<DataStream>(m, "Stream")
      .def(
          "map",
          [](const DataStream& s, nb::object adapter, std::string what,
             nb::object schema) {
            std::shared_ptr<arrow::Schema> out_schema;
            if (!schema.is_none()) out_schema = ValueOrThrow(SchemaFromCapsule(schema));
            return s.Map(MakeBatchFunction(std::move(adapter), what), what, out_schema);
          },
          "adapter"_a, "what"_a, "schema"_a.none())
      .def(
          "flat_map",
          [](const DataStream& s, nb::object adapter, std::string what,
             nb::object schema) {
            std::shared_ptr<arrow::Schema> out_schema;
            if (!schema.is_none()) out_schema = ValueOrThrow(SchemaFromCapsule(schema));
            return s.FlatMap(MakeFlatMapFunction(std::move(adapter), what), what,
                             out_schema);
          },
          "adapter"_a, "what"_a, "schema"_a.none())
      .def("filter", [](const DataStream& s,
                        nb::bytes expr) { return s.Filter(ExpressionFromBytes(expr)); })
      .def("select",
           [](const DataStream& s, std::vector<nb::bytes> exprs,
              std::vector<std::string> names) {
             std::vector<arrow::compute::Expression> es;
             for (const auto& e : exprs) es.push_back(ExpressionFromBytes(e));
             return s.Select(std::move(es), std::move(names));
           })
      .def("key_by", &DataStream::KeyBy)
      .def("rebalance", &DataStream::Rebalance)
      .def("broadcast", &DataStream::Broadcast)
      .def("side_output", &DataStream::SideOutput)
      .def("assign_watermarks",
           [](const DataStream& s, nb::dict options) {
             return s.AssignWatermarks(WatermarkOptionsFromPython(options));
           })
      .def("window",
           [](const DataStream& s, nb::dict window, nb::list aggregates) {
             return s.Window(WindowOptionsFromPython(window, aggregates));
           })
      .def("union", &DataStream::Union)
      .def("set_parallelism", &DataStream::SetParallelism)
      .def_prop_ro("node_id", &DataStream::node_id)
      .def("collect", [](const DataStream& s) { return PyCollect{s.Collect()}; })
      .def("discard", [](const DataStream& s) { s.Discard(); })
      .def("print",
           [](const DataStream& s, int64_t max_rows, std::string title) {
             auto o = std::make_shared<ConsoleSinkOptions>();
             o->max_rows_per_batch = max_rows;
             o->title = std::move(title);
             s.Sink("console_sink", o);
           })
      .def("write_files", [](const DataStream& s, std::string path, std::string format) {
        ValueOrThrow(FileSinkExtension(format));
        auto o = std::make_shared<FileSinkOptions>();
        o->path = std::move(path);
        o->format = std::move(format);
        s.Sink("file_sink", o);
      });

  nb::class_<StreamEnvironment>(m, "Environment")
      .def_static(
          "create",
          [](int parallelism, int num_threads, int64_t channel_max_rows,
             int64_t channel_max_bytes, int64_t memory_cap_bytes, int max_parallelism) {
            JobOptions o;
            o.parallelism = parallelism;
            o.num_threads = num_threads;
            o.channel_max_rows = channel_max_rows;
            o.channel_max_bytes = channel_max_bytes;
            o.memory_cap_bytes = memory_cap_bytes;
            o.max_parallelism = max_parallelism;
            return StreamEnvironment::Make(o);
          },
          "parallelism"_a, "num_threads"_a, "channel_max_rows"_a, "channel_max_bytes"_a,
          "memory_cap_bytes"_a, "max_parallelism"_a)
      .def("from_stream_capsule",
           [](StreamEnvironment& env, nb::object capsule, int parallelism) {
             auto batches = ValueOrThrow(BatchesFromStreamCapsule(capsule));
             auto reader_schema = batches.empty() ? nullptr : batches.front()->schema();
             return env.FromBatches(reader_schema, std::move(batches), parallelism);
           })
      .def("from_function",
           [](StreamEnvironment& env, nb::object next, std::string what) {
             auto o = std::make_shared<FunctionSourceOptions>();
             o->description = what;
             PyCallable callable(std::move(next));
             o->next = [callable,
                        what]() -> arrow::Result<std::shared_ptr<arrow::RecordBatch>> {
               nb::gil_scoped_acquire gil;
               try {
                 nb::object result = (*callable.fn_)();
                 if (result.is_none()) return nullptr;
                 return BatchFromCapsules(result, what);
               } catch (nb::python_error& e) {
                 return StatusFromPython(e, what);
               }
             };
             return env.FromSource("function_source", o, 1);
           })
      .def("from_nexmark",
           [](StreamEnvironment& env, nb::dict config, int parallelism) {
             auto o = std::make_shared<nexmark::NexmarkSourceOptions>(
                 NexmarkConfigFromDict(config));
             return env.FromSource("nexmark_source", o, parallelism);
           })
      .def(
          "from_files",
          [](StreamEnvironment& env, std::vector<std::string> paths, std::string format,
             nb::object schema, int64_t batch_size, int parallelism) {
            auto o = std::make_shared<FileSourceOptions>();
            o->paths = std::move(paths);
            o->format = std::move(format);
            if (!schema.is_none()) o->schema = ValueOrThrow(SchemaFromCapsule(schema));
            o->batch_size = batch_size;
            return env.FromSource("file_source", o, parallelism);
          },
          "paths"_a, "format"_a, "schema"_a.none(), "batch_size"_a, "parallelism"_a)
      .def("plan_json", [](StreamEnvironment& env) { return env.plan()->ToJson(); })
      .def(
          "start",
          [](StreamEnvironment& env) {
            std::unique_ptr<JobHandle> handle;
            {
              arrow::Result<std::unique_ptr<JobHandle>> r;
              {
                nb::gil_scoped_release release;
                r = env.Start();
              }
              handle = ValueOrThrow(std::move(r));
            }
            return new PyJob{std::move(handle)};
          },
          nb::rv_policy::take_ownership);

  m.def("nexmark_schema", [](std::string view) {
    auto schema = nexmark::SchemaForView(view);
    if (!schema) throw nb::value_error(("unknown Nexmark view '" + view + "'").c_str());
    return SchemaToCapsule(schema);
  });
  m.def("registered_kinds", [] { return OperatorRegistry::Global()->Kinds(); });
  RegisterKafkaBindings(m);        // Kafka source, sink, admin (python/kafka_bindings.cc)
  RegisterJoinBindings(m);         // interval and window joins (python/join_bindings.cc)
  RegisterChangelogBindings(m);    // updating operators (python/changelog_bindings.cc)
  RegisterCheckpointBindings(m);   // checkpoints (python/checkpoint_bindings.cc)
  RegisterRegularJoinBindings(m);  // regular join (python/regular_join_bindings.cc)
  RegisterStateBindings(m);        // keyed state (python/state_bindings.cc)
  RegisterLookupBindings(m);       // lookup join, PostgreSQL (python/lookup_bindings.cc)
  RegisterViewBindings(m);         // materialized views, HTTP (python/views_bindings.cc)
  RegisterUpsertBindings(m);       // upsert sinks (python/upsert_bindings.cc)
  RegisterFaustStoreBindings(m);   // Faust tables' store (python/faust_store_bindings.cc)
  RegisterFaustBindings(m);        // Faust decoder (python/faust_bindings.cc)
  RegisterOverFilesBindings(
      m);  // over_rows, partitioned files (python/over_files_bindings.cc)
}
