// Checkpoint counters and the savepoint request protocol, visible to the job
// and its users without the coordinator's internals.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sabot::checkpoint {

/// A request file a running job polls in its checkpoint directory: `sabot
/// savepoint <dir>` writes it (JSON: {"id", "path", "stop"}) and waits for the
/// response file `_savepoint_response-<id>.json` (JSON: {"status": "ok" |
/// "error", "path", "checkpoint_id", "message"}).
inline constexpr const char* kSavepointRequestFile = "_savepoint_request";
inline constexpr const char* kSavepointResponsePrefix = "_savepoint_response-";

/// Counters and last outcomes, for metrics, the CLI and tests.
struct CheckpointStats {
  int64_t completed = 0;  ///< checkpoints completed (savepoints not counted)
  int64_t savepoints = 0;
  int64_t failed = 0;   ///< checkpoints and savepoints that failed with an error
  int64_t aborted = 0;  ///< given up because a task finished or the job stopped
  int64_t skipped = 0;  ///< periodic triggers skipped: one was still in flight
  int64_t consecutive_failures = 0;
  int64_t in_progress_id = -1;
  int64_t last_completed_id = -1;
  std::string last_completed_path;
  int64_t last_duration_ms = 0;  ///< trigger to completion
  int64_t last_size_bytes = 0;   ///< all files the last checkpoint references
  int64_t last_failed_id = -1;
  std::string last_failure;  ///< message of the last failure ("" when none)
  int64_t restored_id = -1;
  std::string restored_from;
  std::vector<std::string> log;  ///< recent events (restore, failures, deletions)
};

}  // namespace sabot::checkpoint
