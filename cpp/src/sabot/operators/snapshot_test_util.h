// Test harness for operator snapshots: drives P parallel instances of one
// operator without the runtime (as exec/task.cc drives a chain: key_by
// partitioning, watermarks that fire due event-time timers before OnWatermark),
// takes a snapshot in the middle of the input, restores fresh instances at
// another parallelism and compares the union of outputs with the uninterrupted
// run. Header-only; used by the *_snapshot_test.cc files.
//
/// The snapshot is recorded as written and only turned into a MemorySnapshot
/// (through an Arrow IPC round trip) after the old instances went on
/// processing: an operator that mutates buffers it handed to the writer, or
/// that hands over state an IPC round trip does not keep, fails the test.
#pragma once

#include <arrow/api.h>
#include <arrow/compute/exec.h>
#include <arrow/compute/initialize.h>
#include <arrow/io/memory.h>
#include <arrow/ipc/reader.h>
#include <arrow/ipc/writer.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sabot/exec/operator.h"
#include "sabot/exec/partitioner.h"
#include "sabot/exec/stream_element.h"
#include "sabot/plan/registry.h"
#include "sabot/state/snapshot.h"

namespace sabot::snapshot_test {

/// What an operator instance emitted.
class CollectingCollector : public Collector {
 public:
  arrow::Status Emit(std::shared_ptr<arrow::RecordBatch> batch) override {
    if (batch->num_rows() > 0) batches.push_back(std::move(batch));
    return arrow::Status::OK();
  }
  arrow::Status EmitWatermark(int64_t watermark) override {
    watermarks.push_back(watermark);
    return arrow::Status::OK();
  }
  arrow::Status EmitSide(const std::string& tag,
                         std::shared_ptr<arrow::RecordBatch> batch) override {
    if (batch->num_rows() > 0) side[tag].push_back(std::move(batch));
    return arrow::Status::OK();
  }
  arrow::Status EmitIdle(bool idle) override {
    idles.push_back(idle);
    return arrow::Status::OK();
  }

  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  std::map<std::string, std::vector<std::shared_ptr<arrow::RecordBatch>>> side;
  std::vector<int64_t> watermarks;
  std::vector<bool> idles;
};

/// A snapshot as the operators wrote it (batches shared, not copied).
class RecordedSnapshot {
 public:
  explicit RecordedSnapshot(int64_t checkpoint_id) : checkpoint_id_(checkpoint_id) {}

  struct Write {
    enum Kind { kKeyed, kKeyedWithGroups, kOperator } kind;
    std::string table;
    std::shared_ptr<arrow::RecordBatch> rows;
    std::vector<std::string> key_columns;
    std::shared_ptr<arrow::Int32Array> groups;
  };
  struct Instance {
    std::string op;
    int index = 0;
    int parallelism = 1;
    std::vector<Write> writes;
  };

  class Writer : public SnapshotWriter {
   public:
    Writer(RecordedSnapshot* owner, Instance* instance)
        : owner_(owner), instance_(instance) {}
    int64_t checkpoint_id() const override { return owner_->checkpoint_id_; }
    arrow::Status WriteKeyed(const std::string& table,
                             std::shared_ptr<arrow::RecordBatch> rows,
                             const std::vector<std::string>& key_columns) override {
      // Fail now, as a real writer would, on missing key columns.
      ARROW_RETURN_NOT_OK(
          ResolveKeyColumns(*rows->schema(), key_columns, table).status());
      instance_->writes.push_back(
          Write{Write::kKeyed, table, std::move(rows), key_columns, nullptr});
      return arrow::Status::OK();
    }
    arrow::Status WriteKeyedWithGroups(
        const std::string& table, std::shared_ptr<arrow::RecordBatch> rows,
        std::shared_ptr<arrow::Int32Array> key_groups) override {
      instance_->writes.push_back(Write{
          Write::kKeyedWithGroups, table, std::move(rows), {}, std::move(key_groups)});
      return arrow::Status::OK();
    }
    arrow::Status WriteOperatorState(const std::string& table,
                                     std::shared_ptr<arrow::RecordBatch> rows) override {
      instance_->writes.push_back(
          Write{Write::kOperator, table, std::move(rows), {}, nullptr});
      return arrow::Status::OK();
    }
    arrow::Status AddFiles(const std::string& table, const std::string&,
                           const std::vector<std::string>&,
                           const std::vector<std::string>&) override {
      return arrow::Status::NotImplemented("recorded snapshot: no files (", table, ")");
    }

   private:
    RecordedSnapshot* owner_;
    Instance* instance_;
  };

  std::unique_ptr<SnapshotWriter> MakeWriter(const std::string& op, int index,
                                             int parallelism) {
    instances_.push_back(std::make_unique<Instance>());
    instances_.back()->op = op;
    instances_.back()->index = index;
    instances_.back()->parallelism = parallelism;
    return std::make_unique<Writer>(this, instances_.back().get());
  }

  /// Number of rows written to `table` over all instances.
  int64_t RowsIn(const std::string& table) const {
    int64_t n = 0;
    for (const auto& i : instances_) {
      for (const auto& w : i->writes) {
        if (w.table == table) n += w.rows->num_rows();
      }
    }
    return n;
  }
  std::vector<std::string> Tables() const {
    std::vector<std::string> out;
    for (const auto& i : instances_) {
      for (const auto& w : i->writes) {
        if (std::find(out.begin(), out.end(), w.table) == out.end())
          out.push_back(w.table);
      }
    }
    return out;
  }

  /// Every write, copied through an Arrow IPC stream, into `out`.
  arrow::Status ToMemorySnapshot(MemorySnapshot* out) const {
    for (const auto& i : instances_) {
      auto writer = out->Writer(i->op, i->index, i->parallelism);
      for (const auto& w : i->writes) {
        ARROW_ASSIGN_OR_RAISE(auto rows, RoundTrip(w.rows));
        switch (w.kind) {
          case Write::kKeyed:
            ARROW_RETURN_NOT_OK(writer->WriteKeyed(w.table, rows, w.key_columns));
            break;
          case Write::kKeyedWithGroups:
            ARROW_RETURN_NOT_OK(writer->WriteKeyedWithGroups(w.table, rows, w.groups));
            break;
          case Write::kOperator:
            ARROW_RETURN_NOT_OK(writer->WriteOperatorState(w.table, rows));
            break;
        }
      }
    }
    return arrow::Status::OK();
  }

  static arrow::Result<std::shared_ptr<arrow::RecordBatch>> RoundTrip(
      const std::shared_ptr<arrow::RecordBatch>& batch) {
    ARROW_ASSIGN_OR_RAISE(auto sink, arrow::io::BufferOutputStream::Create());
    ARROW_ASSIGN_OR_RAISE(auto writer,
                          arrow::ipc::MakeStreamWriter(sink, batch->schema()));
    ARROW_RETURN_NOT_OK(writer->WriteRecordBatch(*batch));
    ARROW_RETURN_NOT_OK(writer->Close());
    ARROW_ASSIGN_OR_RAISE(auto buffer, sink->Finish());
    auto source = std::make_shared<arrow::io::BufferReader>(buffer);
    ARROW_ASSIGN_OR_RAISE(auto reader, arrow::ipc::RecordBatchStreamReader::Open(source));
    std::shared_ptr<arrow::RecordBatch> out;
    ARROW_RETURN_NOT_OK(reader->ReadNext(&out));
    if (!out) return arrow::RecordBatch::MakeEmpty(batch->schema());
    return out;
  }

 private:
  int64_t checkpoint_id_;
  std::vector<std::unique_ptr<Instance>> instances_;
};

/// P parallel instances of one plan node, driven like exec/task.cc drives them.
class ParallelOperator {
 public:
  struct Instance {
    std::unique_ptr<Operator> op;
    OperatorContext ctx;
    TimerService timers;
    CollectingCollector out;
    std::unique_ptr<arrow::compute::ExecContext> exec;
    std::atomic<int64_t> side_rows_unconsumed{0};
  };

  /// Creates and opens the instances; restores each from `restore` when given.
  static arrow::Result<std::unique_ptr<ParallelOperator>> Make(
      const PlanNode& node, int parallelism, int max_parallelism = 128,
      MemorySnapshot* restore = nullptr) {
    // The compute kernels live in libarrow_compute and must be registered once
    // (the runtime does it in StreamEnvironment).
    static const arrow::Status init = arrow::compute::Initialize();
    ARROW_RETURN_NOT_OK(init);
    auto p = std::unique_ptr<ParallelOperator>(new ParallelOperator());
    p->node_ = &node;
    p->max_parallelism_ = max_parallelism;
    for (int i = 0; i < parallelism; ++i) {
      auto inst = std::make_unique<Instance>();
      ARROW_ASSIGN_OR_RAISE(
          inst->op, OperatorRegistry::Global()->MakeOperator(node, i, parallelism));
      inst->exec = std::make_unique<arrow::compute::ExecContext>();
      auto& ctx = inst->ctx;
      ctx.operator_name = node.name;
      ctx.instance_index = i;
      ctx.parallelism = parallelism;
      ctx.max_parallelism = max_parallelism;
      ctx.exec_context = inst->exec.get();
      ctx.timers = &inst->timers;
      ctx.key_groups = KeyGroupRange::ForInstance(i, parallelism, max_parallelism);
      ctx.side_rows_unconsumed = &inst->side_rows_unconsumed;
      std::unique_ptr<SnapshotReader> reader;
      if (restore) {
        reader = restore->Reader(node.name, i, parallelism);
        ctx.restore = reader.get();
      }
      ARROW_RETURN_NOT_OK(inst->op->Open(&ctx));
      ctx.restore = nullptr;
      p->instances_.push_back(std::move(inst));
    }
    return p;
  }

  int parallelism() const { return static_cast<int>(instances_.size()); }
  Instance& instance(int i) { return *instances_[static_cast<size_t>(i)]; }

  /// Partitions `batch` by `keys` as key_by does and feeds each part to its
  /// instance; without keys every row goes to instance 0.
  arrow::Status Process(int input, const std::shared_ptr<arrow::RecordBatch>& batch,
                        const std::vector<std::string>& keys) {
    if (keys.empty()) return ProcessOn(0, input, batch);
    ARROW_ASSIGN_OR_RAISE(auto indices,
                          ResolveKeyColumns(*batch->schema(), keys, "harness"));
    std::vector<std::shared_ptr<arrow::RecordBatch>> parts;
    ARROW_RETURN_NOT_OK(PartitionByKey(batch, indices, parallelism(), max_parallelism_,
                                       arrow::default_memory_pool(), &parts));
    for (int i = 0; i < parallelism(); ++i) {
      if (parts[i]) ARROW_RETURN_NOT_OK(ProcessOn(i, input, parts[i]));
    }
    return arrow::Status::OK();
  }

  arrow::Status ProcessOn(int i, int input,
                          const std::shared_ptr<arrow::RecordBatch>& batch) {
    auto& inst = instance(i);
    return inst.op->ProcessBatch(input, batch, &inst.ctx, &inst.out);
  }

  /// Every instance: due event-time timers, then OnWatermark (OperatorSlot::Watermark).
  arrow::Status Watermark(int64_t watermark) {
    for (auto& inst : instances_) {
      inst->ctx.current_watermark = watermark;
      for (const auto& timer : inst->timers.TakeDue(TimeDomain::kEventTime, watermark)) {
        ARROW_RETURN_NOT_OK(inst->op->OnTimer(timer, &inst->ctx, &inst->out));
      }
      ARROW_RETURN_NOT_OK(inst->op->OnWatermark(watermark, &inst->ctx, &inst->out));
    }
    return arrow::Status::OK();
  }

  /// Every instance: processing-time timers due at `now`.
  arrow::Status FireProcessingTimers(int64_t now) {
    for (auto& inst : instances_) {
      for (const auto& timer : inst->timers.TakeDue(TimeDomain::kProcessingTime, now)) {
        ARROW_RETURN_NOT_OK(inst->op->OnTimer(timer, &inst->ctx, &inst->out));
      }
    }
    return arrow::Status::OK();
  }

  arrow::Status Snapshot(RecordedSnapshot* snapshot) {
    for (auto& inst : instances_) {
      auto writer = snapshot->MakeWriter(node_->name, inst->ctx.instance_index,
                                         inst->ctx.parallelism);
      ARROW_RETURN_NOT_OK(inst->op->SnapshotState(writer.get(), &inst->ctx));
    }
    return arrow::Status::OK();
  }

  /// End of input: the maximum watermark, then Close (as Task::Finish).
  arrow::Status Finish() {
    ARROW_RETURN_NOT_OK(Watermark(kMaxWatermark));
    for (auto& inst : instances_)
      ARROW_RETURN_NOT_OK(inst->op->Close(&inst->ctx, &inst->out));
    return arrow::Status::OK();
  }

  std::vector<std::shared_ptr<arrow::RecordBatch>> Output() const {
    std::vector<std::shared_ptr<arrow::RecordBatch>> out;
    for (const auto& inst : instances_)
      out.insert(out.end(), inst->out.batches.begin(), inst->out.batches.end());
    return out;
  }
  std::vector<std::shared_ptr<arrow::RecordBatch>> Side(const std::string& tag) const {
    std::vector<std::shared_ptr<arrow::RecordBatch>> out;
    for (const auto& inst : instances_) {
      auto it = inst->out.side.find(tag);
      if (it != inst->out.side.end())
        out.insert(out.end(), it->second.begin(), it->second.end());
    }
    return out;
  }
  /// Output emitted so far; later Output() calls return only what follows.
  void ClearOutput() {
    for (auto& inst : instances_) {
      inst->out.batches.clear();
      inst->out.side.clear();
    }
  }

 private:
  ParallelOperator() = default;
  const PlanNode* node_ = nullptr;
  int max_parallelism_ = 128;
  std::vector<std::unique_ptr<Instance>> instances_;
};

/// One element of a test input: a batch on an input, or a watermark.
struct Step {
  int input = 0;
  std::shared_ptr<arrow::RecordBatch> batch;  ///< null: a watermark
  int64_t watermark = 0;
  static Step Batch(int input, std::shared_ptr<arrow::RecordBatch> b) {
    return Step{input, std::move(b), 0};
  }
  static Step Watermark(int64_t wm) { return Step{0, nullptr, wm}; }
};

/// The outputs of a run.
struct RunOutput {
  std::vector<std::shared_ptr<arrow::RecordBatch>> main;
  std::map<std::string, std::vector<std::shared_ptr<arrow::RecordBatch>>> side;
  void Append(const ParallelOperator& op, const std::vector<std::string>& tags) {
    auto m = op.Output();
    main.insert(main.end(), m.begin(), m.end());
    for (const auto& t : tags) {
      auto s = op.Side(t);
      side[t].insert(side[t].end(), s.begin(), s.end());
    }
  }
};

/// How a test drives an operator: its plan node, the key columns of each input
/// (key_by), and the side-output tags to collect.
struct Driver {
  const PlanNode* node = nullptr;
  std::vector<std::vector<std::string>> keys;  ///< per input
  std::vector<std::string> side_tags = {"late"};
  int max_parallelism = 128;
  /// When set, routes each batch to an instance instead of key_by (e.g. a
  /// watermark assigner chained to the reader of a source split).
  std::function<int(int input, const arrow::RecordBatch&, int parallelism)> route;

  arrow::Status Feed(ParallelOperator* op, const std::vector<Step>& steps, size_t begin,
                     size_t end) const {
    for (size_t s = begin; s < end; ++s) {
      const Step& step = steps[s];
      if (step.batch && route) {
        ARROW_RETURN_NOT_OK(op->ProcessOn(
            route(step.input, *step.batch, op->parallelism()), step.input, step.batch));
      } else if (step.batch) {
        ARROW_RETURN_NOT_OK(
            op->Process(step.input, step.batch, keys[static_cast<size_t>(step.input)]));
      } else {
        ARROW_RETURN_NOT_OK(op->Watermark(step.watermark));
      }
    }
    return arrow::Status::OK();
  }

  /// Every step at parallelism `p`, then end of input.
  arrow::Result<RunOutput> RunStraight(int p, const std::vector<Step>& steps) const {
    ARROW_ASSIGN_OR_RAISE(auto op, ParallelOperator::Make(*node, p, max_parallelism));
    ARROW_RETURN_NOT_OK(Feed(op.get(), steps, 0, steps.size()));
    ARROW_RETURN_NOT_OK(op->Finish());
    RunOutput out;
    out.Append(*op, side_tags);
    return out;
  }

  struct RestoreRun {
    RunOutput straight;  ///< the old instances, run to the end without interruption
    RunOutput restored;  ///< old instances up to the snapshot + new ones after it
    RecordedSnapshot snapshot{1};
    /// Watermarks (and idle changes) each instance emitted: the old instances up
    /// to the snapshot and to the end, the new instances after the restore.
    std::vector<std::vector<int64_t>> old_watermarks_at_snapshot, old_watermarks,
        new_watermarks;
    std::vector<std::vector<bool>> new_idles;
  };

  /// steps[0, cut) at `p1`; snapshot; the old instances go on to the end (the
  /// uninterrupted run) while fresh instances at `p2`, restored from the
  /// snapshot, run steps[cut, end). Both end with end of input.
  arrow::Result<std::unique_ptr<RestoreRun>> RunWithRestore(
      int p1, int p2, const std::vector<Step>& steps, size_t cut) const {
    auto run = std::make_unique<RestoreRun>();
    ARROW_ASSIGN_OR_RAISE(auto old_op,
                          ParallelOperator::Make(*node, p1, max_parallelism));
    ARROW_RETURN_NOT_OK(Feed(old_op.get(), steps, 0, cut));
    ARROW_RETURN_NOT_OK(old_op->Snapshot(&run->snapshot));
    run->restored.Append(*old_op, side_tags);
    for (int i = 0; i < p1; ++i)
      run->old_watermarks_at_snapshot.push_back(old_op->instance(i).out.watermarks);
    ARROW_RETURN_NOT_OK(Feed(old_op.get(), steps, cut, steps.size()));
    ARROW_RETURN_NOT_OK(old_op->Finish());
    run->straight.Append(*old_op, side_tags);
    for (int i = 0; i < p1; ++i)
      run->old_watermarks.push_back(old_op->instance(i).out.watermarks);
    old_op.reset();

    MemorySnapshot memory(1, max_parallelism);
    ARROW_RETURN_NOT_OK(run->snapshot.ToMemorySnapshot(&memory));
    ARROW_ASSIGN_OR_RAISE(auto new_op,
                          ParallelOperator::Make(*node, p2, max_parallelism, &memory));
    ARROW_RETURN_NOT_OK(Feed(new_op.get(), steps, cut, steps.size()));
    ARROW_RETURN_NOT_OK(new_op->Finish());
    run->restored.Append(*new_op, side_tags);
    for (int i = 0; i < p2; ++i) {
      run->new_watermarks.push_back(new_op->instance(i).out.watermarks);
      run->new_idles.push_back(new_op->instance(i).out.idles);
    }
    return run;
  }
};

// --- comparing outputs --------------------------------------------------------

/// A cell as text: integers and timestamps as integers, floating point with 6
/// decimals, null as "null", lists as [a,b].
inline std::string Cell(int64_t v) { return std::to_string(v); }
inline std::string Cell(double v) {
  // The tiny offset moves the rounding boundaries off the short binary
  // fractions (k + 1/2^n) that averages of integers often hit exactly, where an
  // exact reference and a running mean could otherwise round apart.
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.6f", v + 1e-9);
  return buf;
}
inline std::string NullCell() { return "null"; }

inline std::string CellOf(const arrow::Array& a, int64_t i) {
  if (a.IsNull(i)) return NullCell();
  switch (a.type_id()) {
    case arrow::Type::INT8:
      return Cell(static_cast<int64_t>(static_cast<const arrow::Int8Array&>(a).Value(i)));
    case arrow::Type::INT32:
      return Cell(
          static_cast<int64_t>(static_cast<const arrow::Int32Array&>(a).Value(i)));
    case arrow::Type::INT64:
      return Cell(static_cast<const arrow::Int64Array&>(a).Value(i));
    case arrow::Type::TIMESTAMP:
      return Cell(static_cast<const arrow::TimestampArray&>(a).Value(i));
    case arrow::Type::UINT64:
      return std::to_string(static_cast<const arrow::UInt64Array&>(a).Value(i));
    case arrow::Type::DOUBLE:
      return Cell(static_cast<const arrow::DoubleArray&>(a).Value(i));
    case arrow::Type::BOOL:
      return static_cast<const arrow::BooleanArray&>(a).Value(i) ? "true" : "false";
    case arrow::Type::STRING:
      return std::string(static_cast<const arrow::StringArray&>(a).GetView(i));
    case arrow::Type::LIST: {
      const auto& l = static_cast<const arrow::ListArray&>(a);
      std::string s = "[";
      for (int64_t j = l.value_offset(i); j < l.value_offset(i + 1); ++j) {
        if (j > l.value_offset(i)) s += ',';
        s += CellOf(*l.values(), j);
      }
      return s + "]";
    }
    default:
      return a.GetScalar(i).ValueOrDie()->ToString();
  }
}

/// Every row of `batches` as "c1|c2|...", over `columns` (all when empty), sorted.
inline std::vector<std::string> SortedRows(
    const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches,
    const std::vector<std::string>& columns = {}) {
  std::vector<std::string> rows;
  for (const auto& b : batches) {
    std::vector<std::shared_ptr<arrow::Array>> cols;
    if (columns.empty()) {
      cols = b->columns();
    } else {
      for (const auto& c : columns) {
        auto col = b->GetColumnByName(c);
        EXPECT_TRUE(col) << "no column " << c << " in " << b->schema()->ToString();
        if (col) cols.push_back(col);
      }
    }
    for (int64_t i = 0; i < b->num_rows(); ++i) {
      std::string row;
      for (size_t c = 0; c < cols.size(); ++c) {
        if (c) row += '|';
        row += CellOf(*cols[c], i);
      }
      rows.push_back(std::move(row));
    }
  }
  std::sort(rows.begin(), rows.end());
  return rows;
}

/// Joins cells into a row string (for references).
inline std::string Row(const std::vector<std::string>& cells) {
  std::string row;
  for (size_t c = 0; c < cells.size(); ++c) {
    if (c) row += '|';
    row += cells[c];
  }
  return row;
}

inline std::vector<std::string> Sorted(std::vector<std::string> rows) {
  std::sort(rows.begin(), rows.end());
  return rows;
}

/// The first difference of two sorted row lists, for failure messages.
inline std::string FirstDifference(const std::vector<std::string>& got,
                                   const std::vector<std::string>& want) {
  std::vector<std::string> extra, missing;
  std::set_difference(got.begin(), got.end(), want.begin(), want.end(),
                      std::back_inserter(extra));
  std::set_difference(want.begin(), want.end(), got.begin(), got.end(),
                      std::back_inserter(missing));
  std::string s = std::to_string(got.size()) + " rows vs " + std::to_string(want.size()) +
                  " expected";
  for (size_t i = 0; i < std::min<size_t>(extra.size(), 5); ++i)
    s += "\n  unexpected: " + extra[i];
  for (size_t i = 0; i < std::min<size_t>(missing.size(), 5); ++i)
    s += "\n  missing:    " + missing[i];
  return s;
}

#define EXPECT_ROWS_EQ(got, want)                                          \
  do {                                                                     \
    const auto& got_rows_ = (got);                                         \
    const auto& want_rows_ = (want);                                       \
    EXPECT_TRUE(got_rows_ == want_rows_)                                   \
        << ::sabot::snapshot_test::FirstDifference(got_rows_, want_rows_); \
  } while (0)

/// A plan node for `kind` with `options` (kept alive by the node).
inline std::unique_ptr<PlanNode> MakeNode(const std::string& kind,
                                          std::shared_ptr<const NodeOptions> options) {
  auto node = std::make_unique<PlanNode>();
  node->id = 0;
  node->kind = kind;
  node->name = kind + "#0";
  node->options = std::move(options);
  return node;
}

/// A cut point near `fraction` of `steps` right after a watermark, so that the
/// restored instances see batches before their first watermark (rows that were
/// late before the snapshot must be late after it, from the restored watermark).
inline size_t CutAfterWatermark(const std::vector<Step>& steps, double fraction) {
  auto cut = static_cast<size_t>(static_cast<double>(steps.size()) * fraction);
  while (cut < steps.size() && cut > 0 && steps[cut - 1].batch) ++cut;
  return cut;
}

/// The parallelism changes every snapshot test covers.
inline std::vector<std::pair<int, int>> Rescalings() { return {{1, 3}, {3, 2}, {2, 2}}; }

}  // namespace sabot::snapshot_test
