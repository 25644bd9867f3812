#include "sabot/operators/accumulators.h"

#include <arrow/array/concatenate.h>
#include <arrow/compute/api_scalar.h>
#include <arrow/compute/api_vector.h>
#include <arrow/compute/cast.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <string>
#include <unordered_set>

#include "sabot/operators/zeroed_table.h"

namespace sabot {

namespace {

bool IsIntegerLike(const arrow::DataType& t) {
  switch (t.id()) {
    case arrow::Type::INT8:
    case arrow::Type::INT16:
    case arrow::Type::INT32:
    case arrow::Type::INT64:
    case arrow::Type::UINT8:
    case arrow::Type::UINT16:
    case arrow::Type::UINT32:
    case arrow::Type::UINT64:
    case arrow::Type::TIMESTAMP:
    case arrow::Type::DATE32:
    case arrow::Type::DATE64:
    case arrow::Type::DURATION:
    case arrow::Type::TIME32:
    case arrow::Type::TIME64:
      return true;
    default:
      return false;
  }
}

bool IsFloating(const arrow::DataType& t) {
  return t.id() == arrow::Type::FLOAT || t.id() == arrow::Type::DOUBLE ||
         t.id() == arrow::Type::HALF_FLOAT;
}

// Views integer-like values as int64 (zero-copy for int64/timestamp/duration/date64).
arrow::Result<std::shared_ptr<arrow::Int64Array>> AsInt64(
    const std::shared_ptr<arrow::Array>& a) {
  const auto id = a->type_id();
  if (id == arrow::Type::INT64 || id == arrow::Type::TIMESTAMP ||
      id == arrow::Type::DURATION || id == arrow::Type::DATE64 ||
      id == arrow::Type::TIME64) {
    auto data = a->data()->Copy();
    data->type = arrow::int64();
    return std::make_shared<arrow::Int64Array>(data);
  }
  if (id == arrow::Type::DATE32 || id == arrow::Type::TIME32) {
    auto data = a->data()->Copy();
    data->type = arrow::int32();
    ARROW_ASSIGN_OR_RAISE(auto cast,
                          arrow::compute::Cast(*arrow::MakeArray(data), arrow::int64()));
    return std::static_pointer_cast<arrow::Int64Array>(cast);
  }
  ARROW_ASSIGN_OR_RAISE(auto cast, arrow::compute::Cast(*a, arrow::int64()));
  return std::static_pointer_cast<arrow::Int64Array>(cast);
}

arrow::Result<std::shared_ptr<arrow::DoubleArray>> AsDouble(
    const std::shared_ptr<arrow::Array>& a) {
  if (a->type_id() == arrow::Type::DOUBLE)
    return std::static_pointer_cast<arrow::DoubleArray>(a);
  std::shared_ptr<arrow::Array> in = a;
  if (IsIntegerLike(*a->type()) && a->type_id() != arrow::Type::INT64) {
    ARROW_ASSIGN_OR_RAISE(in, AsInt64(a));
  }
  ARROW_ASSIGN_OR_RAISE(auto cast, arrow::compute::Cast(*in, arrow::float64()));
  return std::static_pointer_cast<arrow::DoubleArray>(cast);
}

template <typename T>
std::shared_ptr<arrow::Array> MakeNumeric(const std::vector<T>& values,
                                          const std::vector<uint8_t>* valid) {
  using ArrowType = typename arrow::CTypeTraits<T>::ArrowType;
  typename arrow::TypeTraits<ArrowType>::BuilderType builder;
  (void)builder.Reserve(static_cast<int64_t>(values.size()));
  for (size_t i = 0; i < values.size(); ++i) {
    if (valid && !(*valid)[i]) {
      builder.UnsafeAppendNull();
    } else {
      builder.UnsafeAppend(values[i]);
    }
  }
  std::shared_ptr<arrow::Array> out;
  (void)builder.Finish(&out);
  return out;
}

// Column `i` of an aggregate's checkpointed state, checked against `type`.
template <typename ArrayType>
arrow::Result<const ArrayType*> StateColumn(const arrow::ArrayVector& columns, size_t i,
                                            const arrow::DataType& type,
                                            const char* aggregate) {
  if (i >= columns.size()) {
    return arrow::Status::Invalid("restoring ", aggregate, " state: ", columns.size(),
                                  " state columns, expected more than ", i);
  }
  if (!columns[i]->type()->Equals(type)) {
    return arrow::Status::TypeError("restoring ", aggregate, " state: column ", i,
                                    " has type ", columns[i]->type()->ToString(),
                                    ", expected ", type.ToString());
  }
  return static_cast<const ArrayType*>(columns[i].get());
}

// A list column (one list per group) from per-group vectors of values appended
// by `append(builder, group_index)`.
template <typename ValueBuilder, typename Append>
arrow::Result<std::shared_ptr<arrow::Array>> MakeListColumn(
    size_t num_groups, std::shared_ptr<ValueBuilder> values, Append&& append,
    arrow::MemoryPool* pool) {
  arrow::ListBuilder lists(pool, values);
  ARROW_RETURN_NOT_OK(lists.Reserve(static_cast<int64_t>(num_groups)));
  for (size_t i = 0; i < num_groups; ++i) {
    ARROW_RETURN_NOT_OK(lists.Append());
    ARROW_RETURN_NOT_OK(append(values.get(), i));
  }
  return lists.Finish();
}

// ---------------------------------------------------------------------------

class CountAccumulator : public Accumulator {
 public:
  void Resize(int64_t n) override {
    counts_.resize(n, 0);
    num_groups_ = n;
  }
  arrow::Status Consume(const std::shared_ptr<arrow::Array>& values, const uint32_t* ids,
                        int64_t length) override {
    int64_t* counts = counts_.data();
    if (!values || values->null_count() == 0) {
      for (int64_t i = 0; i < length; ++i) ++counts[ids[i]];
    } else {
      for (int64_t i = 0; i < length; ++i) counts[ids[i]] += values->IsValid(i);
    }
    return arrow::Status::OK();
  }
  arrow::Status MergeFrom(const Accumulator& other, const uint32_t* mapping) override {
    const auto& o = static_cast<const CountAccumulator&>(other);
    for (size_t g = 0; g < o.counts_.size(); ++g) counts_[mapping[g]] += o.counts_[g];
    return arrow::Status::OK();
  }
  void MergeGroup(uint32_t dst, uint32_t src) override { counts_[dst] += counts_[src]; }
  void ResetGroup(uint32_t g) override { counts_[g] = 0; }
  arrow::Result<std::shared_ptr<arrow::Array>> Finalize(
      const std::vector<uint32_t>& groups) override {
    std::vector<int64_t> out(groups.size());
    for (size_t i = 0; i < groups.size(); ++i) out[i] = counts_[groups[i]];
    return MakeNumeric(out, nullptr);
  }
  std::unique_ptr<Accumulator> MakeEmpty() const override {
    return std::make_unique<CountAccumulator>();
  }
  int num_state_columns() const override { return 1; }
  arrow::Status ExportState(const std::vector<uint32_t>& groups,
                            std::vector<std::string>* names,
                            arrow::ArrayVector* columns) override {
    std::vector<int64_t> out(groups.size());
    for (size_t i = 0; i < groups.size(); ++i) out[i] = counts_[groups[i]];
    names->push_back("count");
    columns->push_back(MakeNumeric(out, nullptr));
    return arrow::Status::OK();
  }
  arrow::Status MergeState(const arrow::ArrayVector& columns, const uint32_t* ids,
                           int64_t length) override {
    ARROW_ASSIGN_OR_RAISE(const auto* c, StateColumn<arrow::Int64Array>(
                                             columns, 0, *arrow::int64(), "count"));
    for (int64_t i = 0; i < length; ++i) counts_[ids[i]] += c->Value(i);
    return arrow::Status::OK();
  }

 private:
  std::vector<int64_t> counts_;
};

// sum / min / max over int64 or double, with the output cast back to `out_type`.
enum class Reduce { kSum, kMin, kMax };

template <typename T, Reduce R>
class ReduceAccumulator : public Accumulator {
 public:
  explicit ReduceAccumulator(std::shared_ptr<arrow::DataType> out_type)
      : out_type_(std::move(out_type)) {}
  void Resize(int64_t n) override {
    values_.resize(n, T{});
    seen_.resize(n, 0);
    num_groups_ = n;
  }
  static void Apply(T* acc, uint8_t* seen, T v) {
    if constexpr (R == Reduce::kSum) {
      *acc += v;
    } else if constexpr (R == Reduce::kMin) {
      if (!*seen || v < *acc) *acc = v;
    } else {
      if (!*seen || v > *acc) *acc = v;
    }
    *seen = 1;
  }
  arrow::Status Consume(const std::shared_ptr<arrow::Array>& values, const uint32_t* ids,
                        int64_t length) override {
    std::shared_ptr<arrow::Array> typed;
    if constexpr (std::is_same_v<T, double>) {
      ARROW_ASSIGN_OR_RAISE(typed, AsDouble(values));
    } else {
      ARROW_ASSIGN_OR_RAISE(typed, AsInt64(values));
    }
    const T* v = typed->data()->GetValues<T>(1);
    T* acc = values_.data();
    uint8_t* seen = seen_.data();
    if (typed->null_count() == 0) {
      for (int64_t i = 0; i < length; ++i) Apply(&acc[ids[i]], &seen[ids[i]], v[i]);
    } else {
      for (int64_t i = 0; i < length; ++i) {
        if (typed->IsValid(i)) Apply(&acc[ids[i]], &seen[ids[i]], v[i]);
      }
    }
    return arrow::Status::OK();
  }
  arrow::Status MergeFrom(const Accumulator& other, const uint32_t* mapping) override {
    const auto& o = static_cast<const ReduceAccumulator&>(other);
    for (size_t g = 0; g < o.values_.size(); ++g) {
      if (o.seen_[g]) Apply(&values_[mapping[g]], &seen_[mapping[g]], o.values_[g]);
    }
    return arrow::Status::OK();
  }
  void MergeGroup(uint32_t dst, uint32_t src) override {
    if (seen_[src]) Apply(&values_[dst], &seen_[dst], values_[src]);
  }
  void ResetGroup(uint32_t g) override {
    values_[g] = T{};
    seen_[g] = 0;
  }
  arrow::Result<std::shared_ptr<arrow::Array>> Finalize(
      const std::vector<uint32_t>& groups) override {
    std::vector<T> out(groups.size());
    std::vector<uint8_t> valid(groups.size());
    for (size_t i = 0; i < groups.size(); ++i) {
      out[i] = values_[groups[i]];
      valid[i] = seen_[groups[i]];
    }
    auto array = MakeNumeric(out, &valid);
    if (array->type()->Equals(*out_type_)) return array;
    if (out_type_->id() == arrow::Type::TIMESTAMP ||
        out_type_->id() == arrow::Type::DURATION ||
        out_type_->id() == arrow::Type::DATE64 ||
        out_type_->id() == arrow::Type::TIME64) {
      auto data = array->data()->Copy();
      data->type = out_type_;
      return arrow::MakeArray(data);
    }
    return arrow::compute::Cast(*array, out_type_);
  }
  std::unique_ptr<Accumulator> MakeEmpty() const override {
    return std::make_unique<ReduceAccumulator>(out_type_);
  }
  int num_state_columns() const override { return 1; }
  // The running value in T (int64 or float64), null for a group without values.
  arrow::Status ExportState(const std::vector<uint32_t>& groups,
                            std::vector<std::string>* names,
                            arrow::ArrayVector* columns) override {
    std::vector<T> out(groups.size());
    std::vector<uint8_t> valid(groups.size());
    for (size_t i = 0; i < groups.size(); ++i) {
      out[i] = values_[groups[i]];
      valid[i] = seen_[groups[i]];
    }
    names->push_back("value");
    columns->push_back(MakeNumeric(out, &valid));
    return arrow::Status::OK();
  }
  arrow::Status MergeState(const arrow::ArrayVector& columns, const uint32_t* ids,
                           int64_t length) override {
    using ArrayType =
        typename arrow::TypeTraits<typename arrow::CTypeTraits<T>::ArrowType>::ArrayType;
    ARROW_ASSIGN_OR_RAISE(
        const auto* c,
        StateColumn<ArrayType>(columns, 0, *arrow::CTypeTraits<T>::type_singleton(),
                               "sum/min/max"));
    for (int64_t i = 0; i < length; ++i) {
      if (c->IsValid(i)) Apply(&values_[ids[i]], &seen_[ids[i]], c->Value(i));
    }
    return arrow::Status::OK();
  }

 private:
  std::shared_ptr<arrow::DataType> out_type_;
  std::vector<T> values_;
  std::vector<uint8_t> seen_;
};

// mean and variance: count, mean and M2 per group (Welford / Chan merge).
enum class Moment { kMean, kVarSamp, kVarPop, kStddevSamp, kStddevPop };

class MomentAccumulator : public Accumulator {
 public:
  explicit MomentAccumulator(Moment kind) : kind_(kind) {}
  void Resize(int64_t n) override {
    n_.resize(n, 0);
    mean_.resize(n, 0);
    m2_.resize(n, 0);
    num_groups_ = n;
  }
  void Add(uint32_t g, double nb, double mean_b, double m2_b) {
    double na = n_[g];
    double n = na + nb;
    if (n == 0) return;
    double delta = mean_b - mean_[g];
    mean_[g] += delta * nb / n;
    m2_[g] += m2_b + delta * delta * na * nb / n;
    n_[g] = n;
  }
  arrow::Status Consume(const std::shared_ptr<arrow::Array>& values, const uint32_t* ids,
                        int64_t length) override {
    ARROW_ASSIGN_OR_RAISE(auto typed, AsDouble(values));
    const double* v = typed->raw_values();
    for (int64_t i = 0; i < length; ++i) {
      if (typed->null_count() && typed->IsNull(i)) continue;
      uint32_t g = ids[i];
      double n = ++n_[g];
      double delta = v[i] - mean_[g];
      mean_[g] += delta / n;
      m2_[g] += delta * (v[i] - mean_[g]);
    }
    return arrow::Status::OK();
  }
  arrow::Status MergeFrom(const Accumulator& other, const uint32_t* mapping) override {
    const auto& o = static_cast<const MomentAccumulator&>(other);
    for (size_t g = 0; g < o.n_.size(); ++g) {
      if (o.n_[g] > 0) Add(mapping[g], o.n_[g], o.mean_[g], o.m2_[g]);
    }
    return arrow::Status::OK();
  }
  void MergeGroup(uint32_t dst, uint32_t src) override {
    if (n_[src] > 0) Add(dst, n_[src], mean_[src], m2_[src]);
  }
  void ResetGroup(uint32_t g) override { n_[g] = mean_[g] = m2_[g] = 0; }
  arrow::Result<std::shared_ptr<arrow::Array>> Finalize(
      const std::vector<uint32_t>& groups) override {
    std::vector<double> out(groups.size());
    std::vector<uint8_t> valid(groups.size());
    for (size_t i = 0; i < groups.size(); ++i) {
      uint32_t g = groups[i];
      double n = n_[g];
      switch (kind_) {
        case Moment::kMean:
          valid[i] = n > 0;
          out[i] = mean_[g];
          break;
        case Moment::kVarSamp:
        case Moment::kStddevSamp:
          valid[i] = n > 1;
          out[i] = n > 1 ? m2_[g] / (n - 1) : 0;
          break;
        case Moment::kVarPop:
        case Moment::kStddevPop:
          valid[i] = n > 0;
          out[i] = n > 0 ? m2_[g] / n : 0;
          break;
      }
      if (kind_ == Moment::kStddevSamp || kind_ == Moment::kStddevPop)
        out[i] = std::sqrt(out[i]);
    }
    return MakeNumeric(out, &valid);
  }
  std::unique_ptr<Accumulator> MakeEmpty() const override {
    return std::make_unique<MomentAccumulator>(kind_);
  }
  int num_state_columns() const override { return 3; }
  arrow::Status ExportState(const std::vector<uint32_t>& groups,
                            std::vector<std::string>* names,
                            arrow::ArrayVector* columns) override {
    std::vector<double> n(groups.size()), mean(groups.size()), m2(groups.size());
    for (size_t i = 0; i < groups.size(); ++i) {
      n[i] = n_[groups[i]];
      mean[i] = mean_[groups[i]];
      m2[i] = m2_[groups[i]];
    }
    for (const char* name : {"n", "mean", "m2"}) names->push_back(name);
    columns->push_back(MakeNumeric(n, nullptr));
    columns->push_back(MakeNumeric(mean, nullptr));
    columns->push_back(MakeNumeric(m2, nullptr));
    return arrow::Status::OK();
  }
  arrow::Status MergeState(const arrow::ArrayVector& columns, const uint32_t* ids,
                           int64_t length) override {
    const arrow::DoubleArray* c[3];
    for (size_t k = 0; k < 3; ++k) {
      ARROW_ASSIGN_OR_RAISE(c[k], StateColumn<arrow::DoubleArray>(
                                      columns, k, *arrow::float64(), "mean/variance"));
    }
    for (int64_t i = 0; i < length; ++i) {
      const double n = c[0]->Value(i);
      if (n > 0) Add(ids[i], n, c[1]->Value(i), c[2]->Value(i));
    }
    return arrow::Status::OK();
  }

 private:
  Moment kind_;
  std::vector<double> n_, mean_, m2_;
};

// Exact count of distinct non-null values: a set of value bytes per group.
class CountDistinctAccumulator : public Accumulator {
 public:
  void Resize(int64_t n) override {
    sets_.resize(n);
    num_groups_ = n;
  }
  arrow::Status Consume(const std::shared_ptr<arrow::Array>& values, const uint32_t* ids,
                        int64_t length) override {
    const auto id = values->type_id();
    if (id == arrow::Type::STRING || id == arrow::Type::BINARY) {
      const auto& a = static_cast<const arrow::BinaryArray&>(*values);
      for (int64_t i = 0; i < length; ++i) {
        if (a.IsValid(i)) sets_[ids[i]].emplace(a.GetView(i));
      }
    } else if (id == arrow::Type::LARGE_STRING || id == arrow::Type::LARGE_BINARY) {
      const auto& a = static_cast<const arrow::LargeBinaryArray&>(*values);
      for (int64_t i = 0; i < length; ++i) {
        if (a.IsValid(i)) sets_[ids[i]].emplace(a.GetView(i));
      }
    } else if (IsIntegerLike(*values->type()) || IsFloating(*values->type()) ||
               id == arrow::Type::BOOL) {
      std::shared_ptr<arrow::Array> typed;
      if (IsFloating(*values->type())) {
        ARROW_ASSIGN_OR_RAISE(typed, AsDouble(values));
      } else if (id == arrow::Type::BOOL) {
        ARROW_ASSIGN_OR_RAISE(typed, arrow::compute::Cast(*values, arrow::int64()));
      } else {
        ARROW_ASSIGN_OR_RAISE(typed, AsInt64(values));
      }
      const uint8_t* raw = typed->data()->buffers[1]->data() + typed->offset() * 8;
      for (int64_t i = 0; i < length; ++i) {
        if (!typed->IsValid(i)) continue;
        uint64_t bits;
        std::memcpy(&bits, raw + i * 8, 8);
        if (IsFloating(*values->type()) && bits == (1ULL << 63)) bits = 0;  // -0.0 == 0.0
        sets_[ids[i]].emplace(reinterpret_cast<const char*>(&bits), 8);
      }
    } else {
      return arrow::Status::TypeError("count_distinct does not support type ",
                                      values->type()->ToString());
    }
    return arrow::Status::OK();
  }
  arrow::Status MergeFrom(const Accumulator& other, const uint32_t* mapping) override {
    const auto& o = static_cast<const CountDistinctAccumulator&>(other);
    for (size_t g = 0; g < o.sets_.size(); ++g) {
      sets_[mapping[g]].insert(o.sets_[g].begin(), o.sets_[g].end());
    }
    return arrow::Status::OK();
  }
  void MergeGroup(uint32_t dst, uint32_t src) override {
    if (dst != src) sets_[dst].insert(sets_[src].begin(), sets_[src].end());
  }
  void ResetGroup(uint32_t g) override {
    std::unordered_set<std::string>().swap(sets_[g]);
  }
  arrow::Result<std::shared_ptr<arrow::Array>> Finalize(
      const std::vector<uint32_t>& groups) override {
    std::vector<int64_t> out(groups.size());
    for (size_t i = 0; i < groups.size(); ++i)
      out[i] = static_cast<int64_t>(sets_[groups[i]].size());
    return MakeNumeric(out, nullptr);
  }
  std::unique_ptr<Accumulator> MakeEmpty() const override {
    return std::make_unique<CountDistinctAccumulator>();
  }
  int num_state_columns() const override { return 1; }
  // The distinct values' bytes of each group, as list<binary>.
  arrow::Status ExportState(const std::vector<uint32_t>& groups,
                            std::vector<std::string>* names,
                            arrow::ArrayVector* columns) override {
    auto values = std::make_shared<arrow::BinaryBuilder>();
    ARROW_ASSIGN_OR_RAISE(auto lists,
                          MakeListColumn(
                              groups.size(), values,
                              [&](arrow::BinaryBuilder* b, size_t i) -> arrow::Status {
                                for (const auto& v : sets_[groups[i]])
                                  ARROW_RETURN_NOT_OK(b->Append(v));
                                return arrow::Status::OK();
                              },
                              arrow::default_memory_pool()));
    names->push_back("values");
    columns->push_back(std::move(lists));
    return arrow::Status::OK();
  }
  arrow::Status MergeState(const arrow::ArrayVector& columns, const uint32_t* ids,
                           int64_t length) override {
    ARROW_ASSIGN_OR_RAISE(
        const auto* c, StateColumn<arrow::ListArray>(
                           columns, 0, *arrow::list(arrow::binary()), "count_distinct"));
    const auto& values = static_cast<const arrow::BinaryArray&>(*c->values());
    for (int64_t i = 0; i < length; ++i) {
      if (c->IsNull(i)) continue;
      for (int64_t j = c->value_offset(i); j < c->value_offset(i + 1); ++j)
        sets_[ids[i]].emplace(values.GetView(j));
    }
    return arrow::Status::OK();
  }

 private:
  std::vector<std::unordered_set<std::string>> sets_;
};

// Exact count of distinct values of fixed-width types: one open-addressing table
// of (group, value bits) for all groups. A reset group gets a new generation;
// its old entries are dropped at the next rehash.
//
// The table is usually far larger than the CPU caches (one entry per distinct
// (group, value) pair), so an insert is a cache miss. Consume works in chunks:
// it grows the table once for the chunk's worst case, hashes every row, then
// inserts with the slot of a row several positions ahead prefetched, so that
// the misses overlap instead of stalling one after another. Slots are taken
// from the hash's high bits: growing the table by a power of two keeps the
// entries' order, so a rehash writes the new table front to back instead of at
// random (docs/design/performance.md).
class FixedCountDistinctAccumulator : public Accumulator {
 public:
  explicit FixedCountDistinctAccumulator(bool floating) : floating_(floating) {
    Allocate(kMinCapacity);
  }

  void Resize(int64_t n) override {
    counts_.resize(n, 0);
    gen_.resize(n, 0);
    num_groups_ = n;
  }
  arrow::Status Consume(const std::shared_ptr<arrow::Array>& values, const uint32_t* ids,
                        int64_t length) override {
    std::shared_ptr<arrow::Array> typed;
    if (floating_) {
      ARROW_ASSIGN_OR_RAISE(typed, AsDouble(values));
    } else if (values->type_id() == arrow::Type::BOOL) {
      ARROW_ASSIGN_OR_RAISE(typed, arrow::compute::Cast(*values, arrow::int64()));
    } else {
      ARROW_ASSIGN_OR_RAISE(typed, AsInt64(values));
    }
    const uint64_t* raw = typed->data()->GetValues<uint64_t>(1);
    const bool nulls = typed->null_count() > 0;
    const uint8_t* validity = nulls ? typed->null_bitmap_data() : nullptr;
    const int64_t offset = typed->offset();
    uint64_t bits[kChunk], slots[kChunk];
    uint32_t groups[kChunk];
    for (int64_t begin = 0; begin < length; begin += kChunk) {
      const int64_t end = std::min(length, begin + kChunk);
      int64_t m = 0;
      for (int64_t i = begin; i < end; ++i) {
        if (validity && !arrow::bit_util::GetBit(validity, offset + i)) continue;
        uint64_t b = raw[i];
        if (floating_ && b == (1ULL << 63)) b = 0;  // -0.0 == 0.0
        bits[m] = b;
        groups[m] = ids[i];
        ++m;
      }
      if (m == 0) continue;
      Reserve(static_cast<size_t>(m));
      for (int64_t j = 0; j < m; ++j) {
        slots[j] = Slot(Hash(groups[j], gen_[groups[j]] + 1, bits[j]));
      }
      const Entry* table = table_.data();
      for (int64_t j = 0; j < m; ++j) {
        if (j + kPrefetch < m) __builtin_prefetch(table + slots[j + kPrefetch], 1, 1);
        InsertAt(slots[j], groups[j], bits[j]);
      }
    }
    return arrow::Status::OK();
  }
  arrow::Status MergeFrom(const Accumulator& other, const uint32_t* mapping) override {
    const auto& o = static_cast<const FixedCountDistinctAccumulator&>(other);
    for (const auto& e : o.table_) {
      if (e.gen_plus1 != 0 && e.gen_plus1 == o.gen_[e.group] + 1)
        Insert(mapping[e.group], e.value);
    }
    return arrow::Status::OK();
  }
  void MergeGroup(uint32_t dst, uint32_t src) override {
    if (dst == src) return;
    std::vector<uint64_t> values;
    for (const auto& e : table_) {
      if (e.gen_plus1 != 0 && e.group == src && e.gen_plus1 == gen_[src] + 1)
        values.push_back(e.value);
    }
    for (uint64_t v : values) Insert(dst, v);
  }
  void ResetGroup(uint32_t g) override {
    counts_[g] = 0;
    ++gen_[g];
    stale_ = true;
  }
  arrow::Result<std::shared_ptr<arrow::Array>> Finalize(
      const std::vector<uint32_t>& groups) override {
    std::vector<int64_t> out(groups.size());
    for (size_t i = 0; i < groups.size(); ++i) out[i] = counts_[groups[i]];
    return MakeNumeric(out, nullptr);
  }
  std::unique_ptr<Accumulator> MakeEmpty() const override {
    return std::make_unique<FixedCountDistinctAccumulator>(floating_);
  }
  int num_state_columns() const override { return 1; }
  // The distinct values' bits (normalized) of each group, as list<uint64>: one
  // pass over the table, bucketed by requested group.
  arrow::Status ExportState(const std::vector<uint32_t>& groups,
                            std::vector<std::string>* names,
                            arrow::ArrayVector* columns) override {
    std::vector<int64_t> position(counts_.size(), -1);
    for (size_t i = 0; i < groups.size(); ++i)
      position[groups[i]] = static_cast<int64_t>(i);
    std::vector<std::vector<uint64_t>> buckets(groups.size());
    for (const auto& e : table_) {
      if (e.gen_plus1 == 0 || e.gen_plus1 != gen_[e.group] + 1) continue;
      if (position[e.group] >= 0) buckets[position[e.group]].push_back(e.value);
    }
    auto values = std::make_shared<arrow::UInt64Builder>();
    ARROW_ASSIGN_OR_RAISE(auto lists, MakeListColumn(
                                          groups.size(), values,
                                          [&](arrow::UInt64Builder* b, size_t i) {
                                            return b->AppendValues(buckets[i]);
                                          },
                                          arrow::default_memory_pool()));
    names->push_back("values");
    columns->push_back(std::move(lists));
    return arrow::Status::OK();
  }
  arrow::Status MergeState(const arrow::ArrayVector& columns, const uint32_t* ids,
                           int64_t length) override {
    ARROW_ASSIGN_OR_RAISE(
        const auto* c, StateColumn<arrow::ListArray>(
                           columns, 0, *arrow::list(arrow::uint64()), "count_distinct"));
    const auto& values = static_cast<const arrow::UInt64Array&>(*c->values());
    for (int64_t i = 0; i < length; ++i) {
      if (c->IsNull(i)) continue;
      for (int64_t j = c->value_offset(i); j < c->value_offset(i + 1); ++j)
        Insert(ids[i], values.Value(j));
    }
    return arrow::Status::OK();
  }

 private:
  struct Entry {
    uint64_t value = 0;
    uint32_t group = 0;
    uint32_t gen_plus1 = 0;  // 0: empty slot
  };
  static constexpr size_t kMinCapacity = 1024;
  static constexpr int64_t kChunk = 512;
  static constexpr int64_t kPrefetch = 16;

  static uint64_t Hash(uint32_t group, uint32_t gen, uint64_t value) {
    uint64_t x =
        value ^ (static_cast<uint64_t>(group) << 32 | gen) * 0x9E3779B97F4A7C15ULL;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
  }
  size_t Slot(uint64_t hash) const { return static_cast<size_t>(hash >> shift_); }
  void Allocate(size_t capacity) {
    table_.Reset(capacity);
    shift_ = 64 - std::countr_zero(capacity);
  }
  // Room for `more` inserts at a load factor of at most 1/2, without a rehash.
  void Reserve(size_t more) {
    if ((size_ + more) * 2 > table_.size()) Rehash(more);
  }
  // Inserts starting at slot `i` (that of the pair's hash); the table has room.
  void InsertAt(size_t i, uint32_t group, uint64_t value) {
    const uint32_t gen = gen_[group] + 1;
    const size_t mask = table_.size() - 1;
    for (;; i = (i + 1) & mask) {
      Entry& e = table_[i];
      if (e.gen_plus1 == 0) {
        e = Entry{value, group, gen};
        ++size_;
        ++counts_[group];
        return;
      }
      if (e.value == value && e.group == group && e.gen_plus1 == gen) return;
    }
  }
  void Insert(uint32_t group, uint64_t value) {
    Reserve(1);
    InsertAt(Slot(Hash(group, gen_[group] + 1, value)), group, value);
  }
  // Drops entries of reset groups; the new capacity holds the live entries and
  // `more` at a load factor of at most 3/8 (so growing doubles the table). Old
  // entries come in slot order, so with high-bit slots they land in the new
  // table (nearly) in order.
  void Rehash(size_t more) {
    ZeroedTable<Entry> old = std::move(table_);
    // Without a reset group since the last rehash every entry is live.
    size_t live = size_;
    if (stale_) {
      live = 0;
      for (const auto& e : old)
        live += e.gen_plus1 != 0 && e.gen_plus1 == gen_[e.group] + 1;
    }
    stale_ = false;
    size_t cap = kMinCapacity;
    while ((live + more) * 8 > cap * 3) cap *= 2;
    Allocate(cap);
    size_ = 0;
    const size_t mask = cap - 1;
    for (const auto& e : old) {
      if (e.gen_plus1 == 0 || e.gen_plus1 != gen_[e.group] + 1) continue;
      size_t i = Slot(Hash(e.group, e.gen_plus1, e.value));
      while (table_[i].gen_plus1 != 0) i = (i + 1) & mask;
      table_[i] = e;
      ++size_;
    }
  }

  bool floating_;
  ZeroedTable<Entry> table_;
  bool stale_ = false;  // a group was reset: the table may hold dead entries
  int shift_ = 64;
  size_t size_ = 0;
  std::vector<int64_t> counts_;
  std::vector<uint32_t> gen_;
};

// first / last / collect_list / udaf: references to retained rows.
enum class RowRefKind { kFirst, kLast, kList, kUdaf };

class RowRefAccumulator : public Accumulator {
 public:
  RowRefAccumulator(RowRefKind kind, std::shared_ptr<arrow::DataType> type,
                    UdafFunction udaf, arrow::MemoryPool* pool)
      : kind_(kind), type_(std::move(type)), udaf_(std::move(udaf)), pool_(pool) {}

  void Resize(int64_t n) override {
    refs_.resize(n);
    num_groups_ = n;
  }
  arrow::Status Consume(const std::shared_ptr<arrow::Array>& values, const uint32_t* ids,
                        int64_t length) override {
    const int64_t base = total_rows_;
    chunks_.push_back(values);
    total_rows_ += values->length();
    for (int64_t i = 0; i < length; ++i) AddRef(ids[i], base + i);
    return MaybeCompact();
  }
  arrow::Status MergeFrom(const Accumulator& other, const uint32_t* mapping) override {
    const auto& o = static_cast<const RowRefAccumulator&>(other);
    const int64_t base = total_rows_;
    for (const auto& c : o.chunks_) {
      chunks_.push_back(c);
      total_rows_ += c->length();
    }
    for (size_t g = 0; g < o.refs_.size(); ++g) {
      for (int64_t r : o.refs_[g]) AddRef(mapping[g], base + r);
    }
    return arrow::Status::OK();
  }
  void MergeGroup(uint32_t dst, uint32_t src) override {
    if (dst == src) return;
    auto src_refs = refs_[src];
    for (int64_t r : src_refs) AddRef(dst, r);
  }
  void ResetGroup(uint32_t g) override { std::vector<int64_t>().swap(refs_[g]); }

  arrow::Result<std::shared_ptr<arrow::Array>> Finalize(
      const std::vector<uint32_t>& groups) override {
    ARROW_ASSIGN_OR_RAISE(auto all, AllValues());
    arrow::Int64Builder indices(pool_);
    if (kind_ == RowRefKind::kFirst || kind_ == RowRefKind::kLast) {
      for (uint32_t g : groups) {
        if (refs_[g].empty()) {
          ARROW_RETURN_NOT_OK(indices.AppendNull());
        } else {
          ARROW_RETURN_NOT_OK(indices.Append(refs_[g].front()));
        }
      }
      ARROW_ASSIGN_OR_RAISE(auto idx, indices.Finish());
      ARROW_ASSIGN_OR_RAISE(auto taken, arrow::compute::Take(all, idx));
      return taken.make_array();
    }
    arrow::Int32Builder offsets(pool_);
    int32_t offset = 0;
    ARROW_RETURN_NOT_OK(offsets.Append(0));
    for (uint32_t g : groups) {
      for (int64_t r : refs_[g]) ARROW_RETURN_NOT_OK(indices.Append(r));
      offset += static_cast<int32_t>(refs_[g].size());
      ARROW_RETURN_NOT_OK(offsets.Append(offset));
    }
    ARROW_ASSIGN_OR_RAISE(auto idx, indices.Finish());
    ARROW_ASSIGN_OR_RAISE(auto off, offsets.Finish());
    ARROW_ASSIGN_OR_RAISE(auto taken, arrow::compute::Take(all, idx));
    ARROW_ASSIGN_OR_RAISE(auto lists,
                          arrow::ListArray::FromArrays(*off, *taken.make_array(), pool_));
    if (kind_ == RowRefKind::kList) return lists;
    ARROW_ASSIGN_OR_RAISE(auto result, udaf_(lists));
    if (!result || result->length() != static_cast<int64_t>(groups.size())) {
      return arrow::Status::Invalid("the aggregate function returned ",
                                    result ? result->length() : 0, " values for ",
                                    groups.size(), " groups");
    }
    return result;
  }
  std::unique_ptr<Accumulator> MakeEmpty() const override {
    return std::make_unique<RowRefAccumulator>(kind_, type_, udaf_, pool_);
  }
  int num_state_columns() const override { return 1; }
  // The referenced values of each group in order, as list<input type> (first /
  // last: a list of at most one value, so a null value differs from none).
  arrow::Status ExportState(const std::vector<uint32_t>& groups,
                            std::vector<std::string>* names,
                            arrow::ArrayVector* columns) override {
    ARROW_ASSIGN_OR_RAISE(auto all, AllValues());
    std::vector<int64_t> indices;
    std::vector<int32_t> offsets(1, 0);
    offsets.reserve(groups.size() + 1);
    for (uint32_t g : groups) {
      indices.insert(indices.end(), refs_[g].begin(), refs_[g].end());
      offsets.push_back(static_cast<int32_t>(indices.size()));
    }
    auto index_array = MakeNumeric(indices, nullptr);
    auto offset_array = MakeNumeric(offsets, nullptr);
    ARROW_ASSIGN_OR_RAISE(auto taken, arrow::compute::Take(all, index_array));
    ARROW_ASSIGN_OR_RAISE(auto lists, arrow::ListArray::FromArrays(
                                          *offset_array, *taken.make_array(), pool_));
    names->push_back("rows");
    columns->push_back(std::move(lists));
    return arrow::Status::OK();
  }
  arrow::Status MergeState(const arrow::ArrayVector& columns, const uint32_t* ids,
                           int64_t length) override {
    ARROW_ASSIGN_OR_RAISE(const auto* c, StateColumn<arrow::ListArray>(
                                             columns, 0, *arrow::list(type_), "row"));
    const int64_t base = total_rows_;
    chunks_.push_back(c->values());
    total_rows_ += c->values()->length();
    for (int64_t i = 0; i < length; ++i) {
      if (c->IsNull(i)) continue;
      for (int64_t j = c->value_offset(i); j < c->value_offset(i + 1); ++j)
        AddRef(ids[i], base + j);
    }
    return MaybeCompact();
  }

 private:
  void AddRef(uint32_t g, int64_t row) {
    auto& refs = refs_[g];
    switch (kind_) {
      case RowRefKind::kFirst:
        if (refs.empty()) refs.push_back(row);
        break;
      case RowRefKind::kLast:
        if (refs.empty()) {
          refs.push_back(row);
        } else {
          refs[0] = row;
        }
        break;
      default:
        refs.push_back(row);
    }
  }
  arrow::Result<std::shared_ptr<arrow::Array>> AllValues() {
    if (chunks_.empty()) return arrow::MakeEmptyArray(type_, pool_);
    if (chunks_.size() > 1) {
      ARROW_ASSIGN_OR_RAISE(auto merged, arrow::Concatenate(chunks_, pool_));
      chunks_ = {merged};
    }
    return chunks_.front();
  }
  // Keeps retained rows proportional to live references (long-lived state such
  // as session windows would otherwise keep every batch it ever saw).
  arrow::Status MaybeCompact() {
    if (total_rows_ < 65536) return arrow::Status::OK();
    int64_t live = 0;
    for (const auto& r : refs_) live += static_cast<int64_t>(r.size());
    if (live * 2 > total_rows_) return arrow::Status::OK();
    ARROW_ASSIGN_OR_RAISE(auto all, AllValues());
    arrow::Int64Builder indices(pool_);
    int64_t next = 0;
    for (auto& refs : refs_) {
      for (auto& r : refs) {
        ARROW_RETURN_NOT_OK(indices.Append(r));
        r = next++;
      }
    }
    ARROW_ASSIGN_OR_RAISE(auto idx, indices.Finish());
    ARROW_ASSIGN_OR_RAISE(auto taken, arrow::compute::Take(all, idx));
    chunks_ = {taken.make_array()};
    total_rows_ = next;
    return arrow::Status::OK();
  }

  RowRefKind kind_;
  std::shared_ptr<arrow::DataType> type_;
  UdafFunction udaf_;
  arrow::MemoryPool* pool_;
  std::vector<std::shared_ptr<arrow::Array>> chunks_;
  int64_t total_rows_ = 0;
  std::vector<std::vector<int64_t>> refs_;
};

}  // namespace

arrow::Result<std::unique_ptr<Accumulator>> MakeAccumulator(
    const AggregateSpec& spec, const std::shared_ptr<arrow::DataType>& input_type,
    arrow::MemoryPool* pool) {
  const std::string& f = spec.function;
  if (f == "count") return std::make_unique<CountAccumulator>();
  if (!input_type) {
    return arrow::Status::Invalid("aggregate ", spec.ToString(),
                                  " needs an input column");
  }
  const bool integer = IsIntegerLike(*input_type);
  const bool floating = IsFloating(*input_type);
  auto numeric_error = [&]() {
    return arrow::Status::TypeError("aggregate ", spec.ToString(), ": column '",
                                    spec.column, "' has type ", input_type->ToString(),
                                    ", which is not numeric");
  };
  if (f == "sum") {
    if (floating)
      return std::make_unique<ReduceAccumulator<double, Reduce::kSum>>(arrow::float64());
    if (integer && input_type->id() != arrow::Type::TIMESTAMP) {
      return std::make_unique<ReduceAccumulator<int64_t, Reduce::kSum>>(arrow::int64());
    }
    return numeric_error();
  }
  if (f == "min" || f == "max") {
    if (floating) {
      if (f == "min")
        return std::make_unique<ReduceAccumulator<double, Reduce::kMin>>(input_type);
      return std::make_unique<ReduceAccumulator<double, Reduce::kMax>>(input_type);
    }
    if (integer) {
      if (f == "min")
        return std::make_unique<ReduceAccumulator<int64_t, Reduce::kMin>>(input_type);
      return std::make_unique<ReduceAccumulator<int64_t, Reduce::kMax>>(input_type);
    }
    return numeric_error();
  }
  if (f == "mean" || f == "var_samp" || f == "var_pop" || f == "stddev_samp" ||
      f == "stddev_pop") {
    if (!integer && !floating) return numeric_error();
    Moment m = f == "mean"          ? Moment::kMean
               : f == "var_samp"    ? Moment::kVarSamp
               : f == "var_pop"     ? Moment::kVarPop
               : f == "stddev_samp" ? Moment::kStddevSamp
                                    : Moment::kStddevPop;
    return std::make_unique<MomentAccumulator>(m);
  }
  if (f == "count_distinct") {
    if (integer || input_type->id() == arrow::Type::BOOL) {
      return std::make_unique<FixedCountDistinctAccumulator>(false);
    }
    if (floating) return std::make_unique<FixedCountDistinctAccumulator>(true);
    return std::make_unique<CountDistinctAccumulator>();
  }
  if (f == "first")
    return std::make_unique<RowRefAccumulator>(RowRefKind::kFirst, input_type, nullptr,
                                               pool);
  if (f == "last")
    return std::make_unique<RowRefAccumulator>(RowRefKind::kLast, input_type, nullptr,
                                               pool);
  if (f == "collect_list") {
    return std::make_unique<RowRefAccumulator>(RowRefKind::kList, input_type, nullptr,
                                               pool);
  }
  if (f == "udaf") {
    if (!spec.udaf)
      return arrow::Status::Invalid("aggregate ", spec.ToString(), " has no function");
    return std::make_unique<RowRefAccumulator>(RowRefKind::kUdaf, input_type, spec.udaf,
                                               pool);
  }
  return arrow::Status::Invalid(
      "unknown aggregate function '", f,
      "' (count, count_distinct, sum, min, max, mean, first, last, "
      "var_samp, var_pop, stddev_samp, stddev_pop, collect_list, udaf)");
}

arrow::Result<std::vector<int>> ResolveAggregateColumns(
    const arrow::Schema& schema, const std::vector<AggregateSpec>& aggregates,
    const std::string& operator_name) {
  std::vector<int> indices;
  for (const auto& a : aggregates) {
    if (a.column.empty()) {
      if (a.function != "count") {
        return arrow::Status::Invalid(operator_name, ": aggregate ", a.ToString(),
                                      " needs an input column");
      }
      indices.push_back(-1);
      continue;
    }
    int i = schema.GetFieldIndex(a.column);
    if (i < 0) {
      return arrow::Status::KeyError(
          operator_name, ": aggregate ", a.ToString(), " reads column '", a.column,
          "', which is not in the input schema (", schema.ToString(false), ")");
    }
    indices.push_back(i);
  }
  return indices;
}

}  // namespace sabot
