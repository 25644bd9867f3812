// Flink-compatible string scalar functions as vectorized Arrow compute kernels:
// split_index(str, sep, index) and regexp_extract(str, pattern, group).
//
// They are registered in Arrow's global function registry, so an expression
// built in Python with `call("split_index", col("url"), "/", 3)` (serialized by
// pyarrow, deserialized and bound in C++) resolves them like any Arrow function.
// Why they exist and which regex patterns take the fast path:
// docs/design/string_functions.md.
#pragma once

#include <arrow/compute/registry.h>
#include <arrow/result.h>
#include <arrow/status.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace sabot {

/// Adds split_index and regexp_extract to `registry`. Fails with AlreadyExists
/// when they are there already.
arrow::Status RegisterStringFunctions(arrow::compute::FunctionRegistry* registry);

/// Registers the functions in Arrow's global registry once per process
/// (thread-safe, idempotent). Called at module import and by RegisterBuiltins.
arrow::Status EnsureStringFunctionsRegistered();

/// How regexp_extract evaluates one (pattern, group): a hand-written scan for
/// the class of patterns `[PREFIX]LITERAL[([^STOP]*)]`, where PREFIX is `^`,
/// `(C|^)`, `(^|C)`, `(?:C|^)` or `(?:^|C)` for one literal ASCII character C,
/// and STOP a set of literal ASCII characters; otherwise Arrow's
/// extract_regex (RE2) on a rewritten pattern whose only capturing group is
/// the requested one, named.
struct RegexpExtractPlan {
  enum class Prefix { kNone, kStart, kBoundary };

  bool fast = false;
  // --- fast path ---
  Prefix prefix = Prefix::kNone;
  char boundary = 0;              // C of (C|^)
  bool boundary_first = false;    // (C|^) rather than (^|C): C wins the tie at 0
  bool prefix_capturing = false;  // (C|^) is group 1
  std::string literal;
  bool has_tail = false;  // ([^STOP]*) follows the literal (the last group)
  std::array<bool, 256> stop{};
  enum class Output { kWhole, kPrefix, kTail } output = Output::kWhole;
  // --- fallback ---
  std::string named_pattern;  // the pattern with group `group` as (?P<g>...)
};

/// Plans `pattern` / `group` (Flink numbering: 0 = whole match). Invalid
/// (negative or past the last group, unbalanced parentheses) names
/// regexp_extract and the pattern; RE2 syntax errors surface on first use.
arrow::Result<RegexpExtractPlan> PlanRegexpExtract(std::string_view pattern,
                                                   int64_t group);

}  // namespace sabot
