// Sink "materialized_view": applies every batch of its input to a
// MaterializedView (view.h), which readers query while the job runs.
//
// The input is a changelog (`_op` column: +I/+U upsert, -U/-D delete by key)
// or a plain stream (every row an upsert: the latest row per key). The C++ and
// Python APIs hash-partition the input by the view's key, so each key has one
// writer and its changes apply in order.
//
// State: the rows each instance wrote go into its checkpoints (keyed state
// "rows"), and a restored job refills the view from them. With
// ViewConsistency::kCheckpoint an instance also keeps its own latest rows (for
// its checkpoints) and stages its input per checkpoint: the changes up to a
// barrier reach the view when the checkpoint completes
// (NotifyCheckpointComplete), everything at end of input.
#pragma once

#include <memory>
#include <string>

#include "sabot/plan/plan.h"
#include "sabot/plan/registry.h"
#include "sabot/views/view.h"

namespace sabot {

struct ViewSinkOptions : NodeOptions {
  std::shared_ptr<MaterializedView> view;
  std::string ToString() const override;
};

void RegisterViewSink(OperatorRegistry* registry);

}  // namespace sabot
