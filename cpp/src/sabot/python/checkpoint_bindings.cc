// Python bindings of checkpoints, restore and savepoints. Options arrive as a
// dict built by python/sabot/checkpoint.py (which validates and documents
// them). Blocking calls release the GIL.
#include "sabot/python/checkpoint_bindings.h"

#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <string>

#include "sabot/api/datastream.h"
#include "sabot/checkpoint/coordinator.h"
#include "sabot/checkpoint/storage.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace sabot {
namespace {

// Raises sabot.JobError (registered by module.cc) with the status message.
[[noreturn]] void RaiseJobError(const arrow::Status& st) {
  nb::object cls = nb::module_::import_("sabot._sabot").attr("JobError");
  PyErr_SetString(cls.ptr(), st.ToString().c_str());
  throw nb::python_error();
}

void ThrowIfError(const arrow::Status& st) {
  if (!st.ok()) RaiseJobError(st);
}

template <typename T>
T ValueOrRaise(arrow::Result<T> r) {
  ThrowIfError(r.status());
  return r.MoveValueUnsafe();
}

nb::dict StatsToDict(const checkpoint::CheckpointStats& s) {
  nb::dict d;
  d["completed"] = s.completed;
  d["savepoints"] = s.savepoints;
  d["failed"] = s.failed;
  d["aborted"] = s.aborted;
  d["skipped"] = s.skipped;
  d["consecutive_failures"] = s.consecutive_failures;
  d["in_progress_id"] = s.in_progress_id;
  d["last_completed_id"] = s.last_completed_id;
  d["last_completed_path"] = s.last_completed_path;
  d["last_duration_ms"] = s.last_duration_ms;
  d["last_size_bytes"] = s.last_size_bytes;
  d["last_failed_id"] = s.last_failed_id;
  d["last_failure"] = s.last_failure;
  d["restored_id"] = s.restored_id;
  d["restored_from"] = s.restored_from;
  nb::list log;
  for (const auto& line : s.log) log.append(line);
  d["log"] = log;
  return d;
}

template <typename T>
void Set(const nb::dict& d, const char* key, T* out) {
  if (d.contains(key) && !d[key].is_none()) *out = nb::cast<T>(d[key]);
}

}  // namespace

void RegisterCheckpointBindings(nb::module_& m) {
  // Checkpoint control of a running job; obtained from Job.native_job().
  nb::class_<Job>(m, "NativeJob")
      .def(
          "trigger_checkpoint",
          [](Job& job, int64_t id) {
            arrow::Result<int64_t> r;
            {
              nb::gil_scoped_release release;
              if (id < 0) {
                r = job.TriggerCheckpoint();
              } else {
                auto st = job.TriggerCheckpoint(id);
                r = st.ok() ? arrow::Result<int64_t>(id) : arrow::Result<int64_t>(st);
              }
            }
            return ValueOrRaise(std::move(r));
          },
          "checkpoint_id"_a = -1)
      .def("savepoint",
           [](Job& job, std::string path) {
             arrow::Result<std::string> r;
             {
               nb::gil_scoped_release release;
               r = job.TriggerSavepoint(path);
             }
             return ValueOrRaise(std::move(r));
           })
      .def("stop_with_savepoint",
           [](Job& job, std::string path) {
             arrow::Result<std::string> r;
             {
               nb::gil_scoped_release release;
               r = job.StopWithSavepoint(path);
             }
             return ValueOrRaise(std::move(r));
           })
      .def("checkpoint_stats",
           [](const Job& job) { return StatsToDict(job.CheckpointStatistics()); })
      .def("await_checkpoints", [](Job& job, int64_t count, double timeout_s) {
        nb::gil_scoped_release release;
        return job.AwaitCheckpoints(count, static_cast<int64_t>(timeout_s * 1000));
      });

  m.def(
      "configure_checkpoints",
      [](StreamEnvironment& env, nb::dict d) {
        JobOptions* o = env.options();
        Set(d, "checkpoint_dir", &o->checkpoint.directory);
        Set(d, "checkpoint_interval_ms", &o->checkpoint.interval_ms);
        Set(d, "retain_checkpoints", &o->checkpoint.retain);
        Set(d, "tolerable_checkpoint_failures", &o->checkpoint.tolerable_failures);
        Set(d, "unaligned_checkpoints", &o->checkpoint.unaligned);
        Set(d, "restore", &o->checkpoint.restore_from);
        Set(d, "allow_non_restored_state", &o->checkpoint.allow_non_restored_state);
        Set(d, "job_name", &o->job_name);
        Set(d, "state_backend", &o->state.backend);
        Set(d, "state_dir", &o->state.local_dir);
      },
      "env"_a, "options"_a);

  m.def(
      "set_uid",
      [](const DataStream& s, std::string uid) {
        s.env()->plan()->mutable_node(s.node_id())->uid = std::move(uid);
      },
      "stream"_a, "uid"_a);

  m.def(
      "verify_checkpoint",
      [](std::string path) {
        checkpoint::CheckpointMetadata m;
        {
          arrow::Result<checkpoint::CheckpointMetadata> r;
          {
            nb::gil_scoped_release release;
            r = checkpoint::LoadMetadata(path);
            if (r.ok()) {
              auto st = checkpoint::VerifyFiles(*r);
              if (!st.ok()) r = st;
            }
          }
          m = ValueOrRaise(std::move(r));
        }
        return m.directory;
      },
      "path"_a);
}

}  // namespace sabot
