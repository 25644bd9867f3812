// The regular (unbounded) join of two keyed streams ("regular_join"): rows with
// equal keys join whatever their times, over append-only and updating
// (changelog) inputs, with retractions. Input 0 is the left side, input 1 the
// right side; both are hash-partitioned on their key columns (the DataStream
// API adds the KeyBy on each side).
//
/// Inputs: an input whose schema has an int8 `_op` column (operators/changelog.h)
/// is updating: +I/+U rows are added to the join, -U/-D rows retract one equal
/// row added before (a retraction of a row that is not in state, e.g. because
/// it expired, is ignored). Any other input is append-only.
///
/// Output: the left columns, then the right columns (without `_op`; a right
/// column whose name clashes gets the prefix "right_"). The output is updating,
/// with an `_op` column of +I and -D rows and no upsert key (retraction
/// semantics), when an input is updating or the join is outer; an inner join of
/// two append-only inputs emits plain (insert-only) rows without `_op`.
///
/// Condition: an optional predicate over the output columns (names as in the
/// output); a pair of rows with equal keys joins only where it is true (null
/// counts as false). As in SQL's ON clause, it decides what "matched" means for
/// outer joins. Conjuncts that read one side only are evaluated once per row of
/// that side when it arrives; the others on the candidate pairs, vectorized,
/// gathering only the columns they read.
///
/// Unique sides: `right_unique` declares that the right input never has two rows
/// with the same key (a primary key: auctions by id). Then a left row whose
/// key's right row has already arrived is final (it joined or it never will)
/// and is not kept, and left rows waiting for a key are dropped once its right
/// row arrived; a right row whose one-sided condition is false is not kept
/// either (only its key is remembered). Both inputs must be append-only; a
/// second right row with a seen key fails the job. `left_unique` likewise.
///
/// Outer joins: an unmatched row of an outer side is emitted at once, padded
/// with nulls (+I). When its first partner arrives later, the padded row is
/// retracted (-D) before the joined row is emitted (+I); when its last partner
/// is retracted, the joined row is retracted and the padded row emitted again.
/// Rows with a null key never match.
///
/// State TTL (processing time, per side): a row not written for the side's TTL
/// (inserted, or its match count changed) is dropped and never matched again.
/// Expiry emits nothing: results the row took part in are not retracted, and an
/// outer partner whose only partners expired is not padded again (as Flink).
///
/// State: per side the retained input batches and, per row, its key's group, a
/// chain link to the previous row of that key, its match count and its last
/// write time. Snapshots write each side's live rows with WriteKeyed on the
/// side's key columns (tables "left_rows" / "right_rows", extra columns
/// `__matches` and `__written_ms`); Open restores them from ctx->restore, at any
/// parallelism.
#pragma once

#include <arrow/compute/expression.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sabot/operators/join_output.h"
#include "sabot/plan/plan.h"
#include "sabot/plan/registry.h"

namespace sabot {

/// Options of "regular_join": left ⋈ right on left_keys[i] = right_keys[i].
struct RegularJoinOptions : NodeOptions {
  std::vector<std::string> left_keys;
  std::vector<std::string> right_keys;
  JoinType type = JoinType::kInner;
  /// Processing-time state TTL of each side's rows in ms (0: keep forever).
  int64_t left_ttl_ms = 0;
  int64_t right_ttl_ms = 0;
  /// Extra join condition over the output columns (see above).
  std::optional<arrow::compute::Expression> condition;
  /// The side has at most one row per key, ever (see above).
  bool left_unique = false;
  bool right_unique = false;
  /// Sides (0 left, 1 right) whose schema arrives on extra inputs 2, 3, ... in
  /// this order: one row of the side, broadcast to every instance by a
  /// "regular_join_schema" node (DataStream::Join sets this up for outer joins,
  /// so that an instance can pad rows with a side none of whose rows it got).
  std::vector<int> schema_inputs;
  std::string ToString() const override;
};

/// Side-output tag of "regular_join_schema": a pass-through operator that also
/// emits the first row it sees under this tag.
inline constexpr char kRegularJoinSchemaTag[] = "schema";
struct RegularJoinSchemaOptions : NodeOptions {
  std::string ToString() const override { return "regular_join_schema()"; }
};

/// Registers "regular_join" and "regular_join_schema".
void RegisterRegularJoin(OperatorRegistry* registry);

}  // namespace sabot
