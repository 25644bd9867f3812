#include "sabot/connectors/nexmark/generator.h"

#include <arrow/array/data.h>
#include <arrow/buffer.h>
#include <arrow/type.h>
#include <arrow/util/bit_util.h>
#include <arrow/util/bitmap_ops.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <string_view>
#include <vector>

namespace sabot::nexmark {

namespace {

// Ids are generated base-0 and shifted by these (Flink FIRST_*_ID).
constexpr int64_t kFirstPersonId = 1000;
constexpr int64_t kFirstAuctionId = 1000;
constexpr int64_t kFirstCategoryId = 10;
constexpr int64_t kNumCategories = 5;

constexpr int64_t kExtraStringBytes = int64_t{1} << 20;
constexpr int kNumHotChannels = 4;
constexpr int kChannelCacheSize = 10000;
// Longest avg_*_byte_size accepted: an extra string (at most 1.2x the average)
// must fit into the 1 MiB source string.
constexpr int64_t kMaxAvgByteSize = 800000;

constexpr std::string_view kFirstNames[] = {"Peter", "Paul",   "Luke",  "John",
                                            "Saul",  "Vicky",  "Kate",  "Julie",
                                            "Sarah", "Deiter", "Walter"};
constexpr std::string_view kLastNames[] = {"Shultz", "Abrams",  "Spencer",
                                           "White",  "Bartels", "Walton",
                                           "Smith",  "Jones",   "Noris"};
constexpr std::string_view kCities[] = {
    "Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland",
    "Bend",    "Redmond",     "Seattle",       "Kent",  "Cheyenne"};
constexpr std::string_view kStates[] = {"AZ", "CA", "ID", "OR", "WA", "WY"};
constexpr std::string_view kHotChannels[kNumHotChannels] = {"Google", "Facebook", "Baidu",
                                                            "Apple"};
constexpr std::string_view kUrlPrefix = "https://www.nexmark.com/";
constexpr std::string_view kUrlSuffix = "/item.htm?query=1";
constexpr std::string_view kChannelIdParam = "&channel_id=";

// ---------------------------------------------------------------------------
// Randomness

uint64_t Mix64(uint64_t z) {  // splitmix64 finalizer
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/// wyrand: one 64x64->128 multiply per draw, good enough statistically and far
/// cheaper than java.util.SplittableRandom's two mixes.
class Rng {
 public:
  explicit Rng(uint64_t state) : state_(state) {}

  uint64_t Next() {
    state_ += 0xa0761d6478bd642fULL;
    const unsigned __int128 t =
        static_cast<unsigned __int128>(state_) * (state_ ^ 0xe7037ed1a0b428dbULL);
    return static_cast<uint64_t>(t >> 64) ^ static_cast<uint64_t>(t);
  }
  /// U[0, n) for n >= 1 (multiply-shift; the bias is below n / 2^64).
  int64_t Below(int64_t n) {
    return static_cast<int64_t>(
        (static_cast<unsigned __int128>(Next()) * static_cast<uint64_t>(n)) >> 64);
  }
  /// Uniform double in [0, 1).
  double Unit() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t state_;
};

// ---------------------------------------------------------------------------
// Tables shared by every generator with the same seed

/// The per-seed lookup tables: built once, immutable afterwards.
struct Tables {
  std::vector<char> extra;  // the 1 MiB source of extra strings
  // URLs 0..3 are HOT_URLS, 4 + c is CACHE[c].
  std::vector<int32_t> url_offsets;
  std::string url_data;
  // "channel-c" for c in [0, 10000).
  std::vector<int32_t> channel_offsets;
  std::string channel_data;
  char card_groups[10000][4];  // "%04d" of 0..9999

  std::string_view url(int64_t i) const {
    return {url_data.data() + url_offsets[i],
            static_cast<size_t>(url_offsets[i + 1] - url_offsets[i])};
  }
  std::string_view channel(int64_t c) const {
    return {channel_data.data() + channel_offsets[c],
            static_cast<size_t>(channel_offsets[c + 1] - channel_offsets[c])};
  }
};

/// Java String.trim() of a string whose only whitespace is ' ': returns the new
/// length after shifting the kept characters to `s`.
int TrimInPlace(char* s, int len) {
  int begin = 0;
  int end = len;
  while (begin < end && s[begin] == ' ') ++begin;
  while (end > begin && s[end - 1] == ' ') --end;
  if (begin > 0) std::memmove(s, s + begin, static_cast<size_t>(end - begin));
  return end - begin;
}

/// str(max, sp) of NEXMARK.md 2.5 into `dst` (room for max - 1 chars): length
/// 3 + U[0, max-3), each character `sp` with probability 1/13, else 'a' + U[0,26),
/// trimmed. One 64-bit draw per character feeds both choices.
int RandomString(Rng* rng, int max, char sp, char* dst) {
  const int len = 3 + static_cast<int>(rng->Below(max - 3));
  for (int i = 0; i < len; ++i) {
    const uint64_t x = rng->Next();
    const bool is_sp = (((x >> 32) * 13) >> 32) == 0;
    const char letter = static_cast<char>('a' + (((x & 0xffffffffULL) * 26) >> 32));
    dst[i] = is_sp ? sp : letter;
  }
  return sp == ' ' ? TrimInPlace(dst, len) : len;
}

void AppendBaseUrl(Rng* rng, std::string* out) {
  out->append(kUrlPrefix);
  char seg[8];
  for (int i = 0; i < 3; ++i) {
    if (i > 0) out->push_back('/');
    const int n = RandomString(rng, 5, '_', seg);
    out->append(seg, static_cast<size_t>(n));
  }
  out->append(kUrlSuffix);
}

uint32_t BitReverse32(uint32_t v) {
  uint32_t r = 0;
  for (int i = 0; i < 32; ++i) {
    r = (r << 1) | (v & 1);
    v >>= 1;
  }
  return r;
}

std::shared_ptr<const Tables> BuildTables(uint64_t seed) {
  auto t = std::make_shared<Tables>();
  {
    // Java: (char)('a' + nextInt() % 26) with a signed remainder, so the
    // characters span 'H'..'z'.
    Rng rng(Mix64(seed ^ 0x6e65786d61726b31ULL));
    t->extra.resize(static_cast<size_t>(kExtraStringBytes));
    for (auto& c : t->extra) {
      const auto v = static_cast<int32_t>(rng.Next() >> 32);
      c = static_cast<char>('a' + v % 26);
    }
  }
  {
    Rng rng(Mix64(seed ^ 0x6e65786d61726b32ULL));
    t->url_offsets.reserve(kNumHotChannels + kChannelCacheSize + 1);
    t->url_offsets.push_back(0);
    for (int i = 0; i < kNumHotChannels; ++i) {
      AppendBaseUrl(&rng, &t->url_data);
      t->url_offsets.push_back(static_cast<int32_t>(t->url_data.size()));
    }
    for (int c = 0; c < kChannelCacheSize; ++c) {
      AppendBaseUrl(&rng, &t->url_data);
      if (rng.Below(10) > 0) {
        // Java Math.abs(Integer.reverse(c)): abs(INT_MIN) stays INT_MIN.
        const auto rev = static_cast<int32_t>(BitReverse32(static_cast<uint32_t>(c)));
        const int64_t id = rev == std::numeric_limits<int32_t>::min()
                               ? rev
                               : (rev < 0 ? -static_cast<int64_t>(rev) : rev);
        t->url_data.append(kChannelIdParam);
        t->url_data.append(std::to_string(id));
      }
      t->url_offsets.push_back(static_cast<int32_t>(t->url_data.size()));
    }
  }
  t->channel_offsets.reserve(kChannelCacheSize + 1);
  t->channel_offsets.push_back(0);
  for (int c = 0; c < kChannelCacheSize; ++c) {
    t->channel_data.append("channel-");
    t->channel_data.append(std::to_string(c));
    t->channel_offsets.push_back(static_cast<int32_t>(t->channel_data.size()));
  }
  for (int i = 0; i < 10000; ++i) {
    t->card_groups[i][0] = static_cast<char>('0' + i / 1000);
    t->card_groups[i][1] = static_cast<char>('0' + i / 100 % 10);
    t->card_groups[i][2] = static_cast<char>('0' + i / 10 % 10);
    t->card_groups[i][3] = static_cast<char>('0' + i % 10);
  }
  return t;
}

std::shared_ptr<const Tables> GetTables(uint64_t seed) {
  static std::mutex mutex;
  static std::map<uint64_t, std::weak_ptr<const Tables>> cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto& slot = cache[seed];
  if (auto tables = slot.lock()) return tables;
  auto tables = BuildTables(seed);
  slot = tables;
  return tables;
}

/// memcpy for the short strings of a row (a few to ~100 bytes): fixed-size moves
/// that the compiler inlines, instead of a libc call that dispatches on the size.
/// Reads and writes exactly [0, n).
inline void CopyShort(char* dst, const char* src, size_t n) {
  if (n >= 16) {
    size_t i = 0;
    for (; i + 16 < n; i += 16) std::memcpy(dst + i, src + i, 16);
    std::memcpy(dst + n - 16, src + n - 16, 16);
  } else if (n >= 8) {
    std::memcpy(dst, src, 8);
    std::memcpy(dst + n - 8, src + n - 8, 8);
  } else if (n >= 4) {
    std::memcpy(dst, src, 4);
    std::memcpy(dst + n - 4, src + n - 4, 4);
  } else {
    for (size_t i = 0; i < n; ++i) dst[i] = src[i];
  }
}

/// 10^(6u) for u in [0, 1), as 2^x with x = 6u log2(10): 2^floor(x) from the
/// exponent bits, 2^(j/256) from a table and the rest from a cubic Taylor series
/// (relative error < 3e-12, far below a cent at 1e8). Several times cheaper than
/// std::exp or std::pow.
class Pow10x6 {
 public:
  Pow10x6() {
    for (int j = 0; j < 256; ++j) table_[j] = std::exp2(j / 256.0);
  }
  double operator()(double u) const {
    const double x = u * kScale;                         // [0, 19.94)
    const auto fixed = static_cast<int64_t>(x * 256.0);  // floor: x >= 0
    const int64_t n = fixed >> 8;
    const double y =
        (x - static_cast<double>(fixed) * (1.0 / 256.0)) * kLn2;  // [0, ln2/256)
    const double frac = 1.0 + y * (1.0 + y * (0.5 + y * (1.0 / 6)));
    const double two_n = std::bit_cast<double>(static_cast<uint64_t>(n + 1023) << 52);
    return two_n * table_[fixed & 255] * frac;
  }

 private:
  static constexpr double kScale = 6.0 * 3.321928094887362347870319429489390175864831393;
  static constexpr double kLn2 = 0.693147180559945309417232121458176568075500134360255;
  double table_[256];
};

// ---------------------------------------------------------------------------
// Column writers: raw Arrow buffers, filled row by row without builders.

/// A fixed-width column with room for `capacity` rows.
template <typename T>
struct FixedColumn {
  std::shared_ptr<arrow::ResizableBuffer> buffer;
  T* data = nullptr;

  arrow::Status Init(int64_t capacity, arrow::MemoryPool* pool) {
    ARROW_ASSIGN_OR_RAISE(buffer, arrow::AllocateResizableBuffer(
                                      capacity * static_cast<int64_t>(sizeof(T)), pool));
    data = buffer->mutable_data_as<T>();
    return arrow::Status::OK();
  }
  void Fill(int64_t begin, int64_t end) {
    std::memset(data + begin, 0, static_cast<size_t>(end - begin) * sizeof(T));
  }
  arrow::Result<std::shared_ptr<arrow::ArrayData>> Finish(
      const std::shared_ptr<arrow::DataType>& type, int64_t rows) {
    ARROW_RETURN_NOT_OK(buffer->Resize(rows * static_cast<int64_t>(sizeof(T)), false));
    auto out = arrow::ArrayData::Make(type, rows, {nullptr, std::move(buffer)}, 0);
    data = nullptr;
    return out;
  }
};

/// A utf8 column: int32 offsets plus a data buffer that grows by 1.5x on demand.
struct StringColumn {
  std::shared_ptr<arrow::ResizableBuffer> offsets_buffer;
  std::shared_ptr<arrow::ResizableBuffer> data_buffer;
  int32_t* offsets = nullptr;
  char* data = nullptr;
  int64_t size = 0;
  int64_t capacity = 0;

  arrow::Status Init(int64_t rows, int64_t bytes, arrow::MemoryPool* pool) {
    ARROW_ASSIGN_OR_RAISE(offsets_buffer,
                          arrow::AllocateResizableBuffer((rows + 1) * 4, pool));
    offsets = offsets_buffer->mutable_data_as<int32_t>();
    offsets[0] = 0;
    capacity = std::clamp<int64_t>(bytes, 64, std::numeric_limits<int32_t>::max());
    ARROW_ASSIGN_OR_RAISE(data_buffer, arrow::AllocateResizableBuffer(capacity, pool));
    data = data_buffer->mutable_data_as<char>();
    size = 0;
    return arrow::Status::OK();
  }
  /// Room for `n` more bytes.
  arrow::Status Reserve(int64_t n) {
    if (ARROW_PREDICT_TRUE(size + n <= capacity)) return arrow::Status::OK();
    return Grow(n);
  }
  [[gnu::noinline]] arrow::Status Grow(int64_t n) {
    const int64_t wanted = std::max(size + n, capacity + capacity / 2);
    if (size + n > std::numeric_limits<int32_t>::max()) {
      return arrow::Status::CapacityError(
          "nexmark: a string column of one batch exceeds 2 GiB; lower batch_size (",
          size + n, " bytes)");
    }
    const int64_t new_capacity =
        std::min<int64_t>(wanted, std::numeric_limits<int32_t>::max());
    ARROW_RETURN_NOT_OK(data_buffer->Reserve(new_capacity));
    capacity = new_capacity;
    data = data_buffer->mutable_data_as<char>();
    return arrow::Status::OK();
  }
  char* tail() { return data + size; }
  void Commit(int64_t row, int64_t n) {
    size += n;
    offsets[row + 1] = static_cast<int32_t>(size);
  }
  void Append(int64_t row, std::string_view s) {
    CopyShort(data + size, s.data(), s.size());
    Commit(row, static_cast<int64_t>(s.size()));
  }
  void Fill(int64_t begin, int64_t end) {
    const auto s = static_cast<int32_t>(size);
    for (int64_t r = begin; r < end; ++r) offsets[r + 1] = s;
  }
  arrow::Result<std::shared_ptr<arrow::ArrayData>> Finish(int64_t rows) {
    ARROW_RETURN_NOT_OK(offsets_buffer->Resize((rows + 1) * 4, false));
    ARROW_RETURN_NOT_OK(data_buffer->Resize(size, false));
    auto out = arrow::ArrayData::Make(
        arrow::utf8(), rows, {nullptr, std::move(offsets_buffer), std::move(data_buffer)},
        0);
    offsets = nullptr;
    data = nullptr;
    return out;
  }
};

std::shared_ptr<arrow::DataType> TimestampType() {
  return arrow::timestamp(arrow::TimeUnit::MILLI, "UTC");
}

arrow::FieldVector PersonFields() {
  return {arrow::field("id", arrow::int64()),
          arrow::field("name", arrow::utf8()),
          arrow::field("emailAddress", arrow::utf8()),
          arrow::field("creditCard", arrow::utf8()),
          arrow::field("city", arrow::utf8()),
          arrow::field("state", arrow::utf8()),
          arrow::field("dateTime", TimestampType()),
          arrow::field("extra", arrow::utf8())};
}
arrow::FieldVector AuctionFields() {
  return {arrow::field("id", arrow::int64()),
          arrow::field("itemName", arrow::utf8()),
          arrow::field("description", arrow::utf8()),
          arrow::field("initialBid", arrow::int64()),
          arrow::field("reserve", arrow::int64()),
          arrow::field("dateTime", TimestampType()),
          arrow::field("expires", TimestampType()),
          arrow::field("seller", arrow::int64()),
          arrow::field("category", arrow::int64()),
          arrow::field("extra", arrow::utf8())};
}
arrow::FieldVector BidFields() {
  return {
      arrow::field("auction", arrow::int64()), arrow::field("bidder", arrow::int64()),
      arrow::field("price", arrow::int64()),   arrow::field("channel", arrow::utf8()),
      arrow::field("url", arrow::utf8()),      arrow::field("dateTime", TimestampType()),
      arrow::field("extra", arrow::utf8())};
}

struct PersonColumns {
  FixedColumn<int64_t> id, date_time;
  StringColumn name, email, credit_card, city, state, extra;
  int64_t rows = 0;

  arrow::Status Init(int64_t capacity, int64_t expected_rows, int64_t avg_size,
                     arrow::MemoryPool* pool) {
    rows = 0;
    const int64_t extra_bytes = std::max<int64_t>(avg_size - 60, 16);
    ARROW_RETURN_NOT_OK(id.Init(capacity, pool));
    ARROW_RETURN_NOT_OK(date_time.Init(capacity, pool));
    ARROW_RETURN_NOT_OK(name.Init(capacity, expected_rows * 11, pool));
    ARROW_RETURN_NOT_OK(email.Init(capacity, expected_rows * 13, pool));
    ARROW_RETURN_NOT_OK(credit_card.Init(capacity, expected_rows * 19, pool));
    ARROW_RETURN_NOT_OK(city.Init(capacity, expected_rows * 8, pool));
    ARROW_RETURN_NOT_OK(state.Init(capacity, expected_rows * 2, pool));
    return extra.Init(capacity, expected_rows * extra_bytes * 21 / 20, pool);
  }
  void PadTo(int64_t row) {
    if (row <= rows) return;
    id.Fill(rows, row);
    date_time.Fill(rows, row);
    name.Fill(rows, row);
    email.Fill(rows, row);
    credit_card.Fill(rows, row);
    city.Fill(rows, row);
    state.Fill(rows, row);
    extra.Fill(rows, row);
    rows = row;
  }
  arrow::Result<std::vector<std::shared_ptr<arrow::ArrayData>>> Finish() {
    std::vector<std::shared_ptr<arrow::ArrayData>> out(8);
    ARROW_ASSIGN_OR_RAISE(out[0], id.Finish(arrow::int64(), rows));
    ARROW_ASSIGN_OR_RAISE(out[1], name.Finish(rows));
    ARROW_ASSIGN_OR_RAISE(out[2], email.Finish(rows));
    ARROW_ASSIGN_OR_RAISE(out[3], credit_card.Finish(rows));
    ARROW_ASSIGN_OR_RAISE(out[4], city.Finish(rows));
    ARROW_ASSIGN_OR_RAISE(out[5], state.Finish(rows));
    ARROW_ASSIGN_OR_RAISE(out[6], date_time.Finish(TimestampType(), rows));
    ARROW_ASSIGN_OR_RAISE(out[7], extra.Finish(rows));
    return out;
  }
};

struct AuctionColumns {
  FixedColumn<int64_t> id, initial_bid, reserve, date_time, expires, seller, category;
  StringColumn item_name, description, extra;
  int64_t rows = 0;

  arrow::Status Init(int64_t capacity, int64_t expected_rows, int64_t avg_size,
                     arrow::MemoryPool* pool) {
    rows = 0;
    const int64_t extra_bytes = std::max<int64_t>(avg_size - 108, 16);
    ARROW_RETURN_NOT_OK(id.Init(capacity, pool));
    ARROW_RETURN_NOT_OK(initial_bid.Init(capacity, pool));
    ARROW_RETURN_NOT_OK(reserve.Init(capacity, pool));
    ARROW_RETURN_NOT_OK(date_time.Init(capacity, pool));
    ARROW_RETURN_NOT_OK(expires.Init(capacity, pool));
    ARROW_RETURN_NOT_OK(seller.Init(capacity, pool));
    ARROW_RETURN_NOT_OK(category.Init(capacity, pool));
    ARROW_RETURN_NOT_OK(item_name.Init(capacity, expected_rows * 11, pool));
    ARROW_RETURN_NOT_OK(description.Init(capacity, expected_rows * 52, pool));
    return extra.Init(capacity, expected_rows * extra_bytes * 21 / 20, pool);
  }
  void PadTo(int64_t row) {
    if (row <= rows) return;
    id.Fill(rows, row);
    initial_bid.Fill(rows, row);
    reserve.Fill(rows, row);
    date_time.Fill(rows, row);
    expires.Fill(rows, row);
    seller.Fill(rows, row);
    category.Fill(rows, row);
    item_name.Fill(rows, row);
    description.Fill(rows, row);
    extra.Fill(rows, row);
    rows = row;
  }
  arrow::Result<std::vector<std::shared_ptr<arrow::ArrayData>>> Finish() {
    std::vector<std::shared_ptr<arrow::ArrayData>> out(10);
    ARROW_ASSIGN_OR_RAISE(out[0], id.Finish(arrow::int64(), rows));
    ARROW_ASSIGN_OR_RAISE(out[1], item_name.Finish(rows));
    ARROW_ASSIGN_OR_RAISE(out[2], description.Finish(rows));
    ARROW_ASSIGN_OR_RAISE(out[3], initial_bid.Finish(arrow::int64(), rows));
    ARROW_ASSIGN_OR_RAISE(out[4], reserve.Finish(arrow::int64(), rows));
    ARROW_ASSIGN_OR_RAISE(out[5], date_time.Finish(TimestampType(), rows));
    ARROW_ASSIGN_OR_RAISE(out[6], expires.Finish(TimestampType(), rows));
    ARROW_ASSIGN_OR_RAISE(out[7], seller.Finish(arrow::int64(), rows));
    ARROW_ASSIGN_OR_RAISE(out[8], category.Finish(arrow::int64(), rows));
    ARROW_ASSIGN_OR_RAISE(out[9], extra.Finish(rows));
    return out;
  }
};

struct BidColumns {
  FixedColumn<int64_t> auction, bidder, price, date_time;
  StringColumn channel, url, extra;
  int64_t rows = 0;

  arrow::Status Init(int64_t capacity, int64_t expected_rows, int64_t avg_size,
                     arrow::MemoryPool* pool) {
    rows = 0;
    const int64_t extra_bytes = std::max<int64_t>(avg_size - 32, 16);
    ARROW_RETURN_NOT_OK(auction.Init(capacity, pool));
    ARROW_RETURN_NOT_OK(bidder.Init(capacity, pool));
    ARROW_RETURN_NOT_OK(price.Init(capacity, pool));
    ARROW_RETURN_NOT_OK(date_time.Init(capacity, pool));
    ARROW_RETURN_NOT_OK(channel.Init(capacity, expected_rows * 10, pool));
    ARROW_RETURN_NOT_OK(url.Init(capacity, expected_rows * 76, pool));
    return extra.Init(capacity, expected_rows * extra_bytes * 21 / 20, pool);
  }
  void PadTo(int64_t row) {
    if (row <= rows) return;
    auction.Fill(rows, row);
    bidder.Fill(rows, row);
    price.Fill(rows, row);
    date_time.Fill(rows, row);
    channel.Fill(rows, row);
    url.Fill(rows, row);
    extra.Fill(rows, row);
    rows = row;
  }
  arrow::Result<std::vector<std::shared_ptr<arrow::ArrayData>>> Finish() {
    std::vector<std::shared_ptr<arrow::ArrayData>> out(7);
    ARROW_ASSIGN_OR_RAISE(out[0], auction.Finish(arrow::int64(), rows));
    ARROW_ASSIGN_OR_RAISE(out[1], bidder.Finish(arrow::int64(), rows));
    ARROW_ASSIGN_OR_RAISE(out[2], price.Finish(arrow::int64(), rows));
    ARROW_ASSIGN_OR_RAISE(out[3], channel.Finish(rows));
    ARROW_ASSIGN_OR_RAISE(out[4], url.Finish(rows));
    ARROW_ASSIGN_OR_RAISE(out[5], date_time.Finish(TimestampType(), rows));
    ARROW_ASSIGN_OR_RAISE(out[6], extra.Finish(rows));
    return out;
  }
};

/// A bid whose fields are drawn but not yet written (see PlanBid).
struct PendingBid {
  int64_t row;
  int64_t auction, bidder, price, date_time;
  std::string_view channel, url, extra;
};
/// Bids planned ahead of writing: enough to hide the table reads' latency.
constexpr int kBidBlock = 32;

enum class View { kCombined, kPerson, kAuction, kBid };

bool ParseView(const std::string& s, View* out) {
  if (s == "combined") {
    *out = View::kCombined;
  } else if (s == "person") {
    *out = View::kPerson;
  } else if (s == "auction") {
    *out = View::kAuction;
  } else if (s == "bid") {
    *out = View::kBid;
  } else {
    return false;
  }
  return true;
}

/// Position of one event in the sequence, as NEXMARK.md 2.3 and 2.4 derive it.
struct EventCoords {
  int64_t adj;  // adjusted event number
  int64_t id;   // event id
  int64_t ep;   // id div T
  int64_t off;  // id mod T
  int64_t ts;   // dateTime before any occasional delay
};

}  // namespace

// ---------------------------------------------------------------------------
// Validation and schemas

arrow::Status ValidateConfig(const NexmarkConfig& c) {
  auto bad = [](const char* field, auto value, const char* rule) {
    return arrow::Status::Invalid("nexmark config: ", field, " ", rule, " (got ", value,
                                  ")");
  };
  if (c.num_events < 0)
    return bad("num_events", c.num_events, "must be >= 0, 0 = unbounded");
  if (c.first_event_rate <= 0)
    return bad("first_event_rate", c.first_event_rate, "must be > 0");
  if (c.num_generators < 0) {
    return bad("num_generators", c.num_generators, "must be >= 0, 0 = number of splits");
  }
  if (c.person_proportion < 0)
    return bad("person_proportion", c.person_proportion, "must be >= 0");
  if (c.auction_proportion < 0) {
    return bad("auction_proportion", c.auction_proportion, "must be >= 0");
  }
  if (c.bid_proportion < 0)
    return bad("bid_proportion", c.bid_proportion, "must be >= 0");
  if (int64_t{c.person_proportion} + c.auction_proportion + c.bid_proportion == 0) {
    return arrow::Status::Invalid(
        "nexmark config: person_proportion + auction_proportion + bid_proportion must be "
        "> 0 "
        "(all are 0)");
  }
  if (int64_t{c.person_proportion} + c.auction_proportion + c.bid_proportion >
      std::numeric_limits<int32_t>::max()) {
    return arrow::Status::Invalid(
        "nexmark config: person_proportion + auction_proportion + bid_proportion is too "
        "large");
  }
  if (c.hot_auction_ratio < 1)
    return bad("hot_auction_ratio", c.hot_auction_ratio, "must be >= 1");
  if (c.hot_sellers_ratio < 1)
    return bad("hot_sellers_ratio", c.hot_sellers_ratio, "must be >= 1");
  if (c.hot_bidders_ratio < 1)
    return bad("hot_bidders_ratio", c.hot_bidders_ratio, "must be >= 1");
  if (c.num_in_flight_auctions < 1) {
    return bad("num_in_flight_auctions", c.num_in_flight_auctions, "must be >= 1");
  }
  if (c.num_active_people < 1)
    return bad("num_active_people", c.num_active_people, "must be >= 1");
  if (c.avg_person_byte_size < 0 || c.avg_person_byte_size > kMaxAvgByteSize) {
    return bad("avg_person_byte_size", c.avg_person_byte_size, "must be in [0, 800000]");
  }
  if (c.avg_auction_byte_size < 0 || c.avg_auction_byte_size > kMaxAvgByteSize) {
    return bad("avg_auction_byte_size", c.avg_auction_byte_size,
               "must be in [0, 800000]");
  }
  if (c.avg_bid_byte_size < 0 || c.avg_bid_byte_size > kMaxAvgByteSize) {
    return bad("avg_bid_byte_size", c.avg_bid_byte_size, "must be in [0, 800000]");
  }
  if (c.out_of_order_group_size < 1) {
    return bad("out_of_order_group_size", c.out_of_order_group_size, "must be >= 1");
  }
  if (c.occasional_delay_ms < 0) {
    return bad("occasional_delay_ms", c.occasional_delay_ms, "must be >= 0");
  }
  if (!(c.prob_delayed_event >= 0.0 && c.prob_delayed_event <= 1.0)) {
    return bad("prob_delayed_event", c.prob_delayed_event, "must be in [0, 1]");
  }
  if (c.rate_limit < 0)
    return bad("rate_limit", c.rate_limit, "must be >= 0, 0 = unlimited");
  if (c.batch_size < 1 || c.batch_size > (int64_t{1} << 24)) {
    return bad("batch_size", c.batch_size, "must be in [1, 16777216]");
  }
  View view;
  if (!ParseView(c.view, &view)) {
    return arrow::Status::Invalid(
        "nexmark config: view must be one of combined, bid, auction, person (got '",
        c.view, "')");
  }
  return arrow::Status::OK();
}

std::shared_ptr<arrow::Schema> PersonSchema() {
  static const auto schema = arrow::schema(PersonFields());
  return schema;
}
std::shared_ptr<arrow::Schema> AuctionSchema() {
  static const auto schema = arrow::schema(AuctionFields());
  return schema;
}
std::shared_ptr<arrow::Schema> BidSchema() {
  static const auto schema = arrow::schema(BidFields());
  return schema;
}
std::shared_ptr<arrow::Schema> CombinedSchema() {
  static const auto schema = arrow::schema({
      arrow::field("event_type", arrow::int32()),
      arrow::field("person", arrow::struct_(PersonFields())),
      arrow::field("auction", arrow::struct_(AuctionFields())),
      arrow::field("bid", arrow::struct_(BidFields())),
      arrow::field("dateTime", TimestampType()),
  });
  return schema;
}
std::shared_ptr<arrow::Schema> SchemaForView(const std::string& view) {
  View v;
  if (!ParseView(view, &v)) return nullptr;
  switch (v) {
    case View::kCombined:
      return CombinedSchema();
    case View::kPerson:
      return PersonSchema();
    case View::kAuction:
      return AuctionSchema();
    case View::kBid:
      return BidSchema();
  }
  return nullptr;
}

// ---------------------------------------------------------------------------
// The generator

struct NexmarkGenerator::Impl {
  NexmarkConfig config;
  arrow::MemoryPool* pool;
  arrow::Status status;  // a bad config or a failed batch, returned by every NextBatch
  View view = View::kCombined;
  std::shared_ptr<arrow::Schema> schema;
  std::shared_ptr<const Tables> tables;

  // Split.
  int64_t first_event_id = 1;
  int64_t count = 0;  // events of this split
  int64_t k = 0;      // events covered so far

  // Derived constants.
  int64_t prop_p = 1, prop_a = 3, total = 50;
  int64_t group = 1;
  double delay_us = 100.0;
  int64_t horizon_events = 0;  // numInFlightAuctions * T div A
  uint64_t seed_mix = 0;
  uint64_t delay_seed_mix = 0;
  Pow10x6 pow10x6;

  // Batch being built.
  FixedColumn<int32_t> event_type;
  FixedColumn<int64_t> date_time;
  PersonColumns person;
  AuctionColumns auction;
  BidColumns bid;
  std::vector<int64_t> person_rows, auction_rows;  // combined: rows of those kinds
  PendingBid pending_bids[kBidBlock];
  int num_pending_bids = 0;

  Impl(NexmarkConfig c, int split_index, int num_splits, arrow::MemoryPool* p)
      : config(std::move(c)), pool(p) {
    status = ValidateConfig(config);
    if (status.ok() && (num_splits < 1 || split_index < 0 || split_index >= num_splits)) {
      status = arrow::Status::Invalid("nexmark: split ", split_index, " of ", num_splits,
                                      " is out of range");
    }
    if (!status.ok()) return;
    ParseView(config.view, &view);
    schema = SchemaForView(config.view);
    tables = GetTables(config.seed);

    prop_p = config.person_proportion;
    prop_a = config.auction_proportion;
    total = prop_p + prop_a + config.bid_proportion;
    group = config.out_of_order_group_size;
    const int64_t generators =
        config.num_generators > 0 ? config.num_generators : num_splits;
    delay_us = 1e6 / static_cast<double>(config.first_event_rate) *
               static_cast<double>(generators);
    horizon_events = prop_a > 0 ? config.num_in_flight_auctions * total / prop_a : 0;
    seed_mix = Mix64(config.seed);
    delay_seed_mix = Mix64(config.seed ^ 0x64656c6179656421ULL);

    int64_t max_events = config.num_events;
    if (max_events == 0) {
      const int64_t max_avg =
          std::max({config.avg_person_byte_size, config.avg_auction_byte_size,
                    config.avg_bid_byte_size, int64_t{1}});
      max_events = std::numeric_limits<int64_t>::max() / (total * max_avg);
    }
    const int64_t sub = max_events / num_splits;
    first_event_id = 1 + split_index * sub;
    count = split_index == num_splits - 1 ? max_events - sub * (num_splits - 1) : sub;
  }

  int64_t Adjust(int64_t num) const {
    if (group == 1) return num;
    const auto g = static_cast<unsigned __int128>(group);
    const auto perm =
        static_cast<int64_t>((static_cast<unsigned __int128>(num) * 953u) % g);
    return num / group * group + perm;
  }
  int64_t TimeOf(int64_t adj) const {
    return config.base_time_ms +
           static_cast<int64_t>(static_cast<double>(adj) * delay_us) / 1000;
  }
  EventCoords Coords(int64_t events_before) const {
    EventCoords e;
    e.adj = Adjust(1 + events_before);
    e.id = first_event_id + e.adj;
    e.ep = e.id / total;
    e.off = e.id - e.ep * total;
    e.ts = 0;
    return e;
  }
  int KindOf(const EventCoords& e) const {
    if (e.off < prop_p) return kPersonEvent;
    if (e.off < prop_p + prop_a) return kAuctionEvent;
    return kBidEvent;
  }

  // Id arithmetic of NEXMARK.md 2.4 (base 0).
  int64_t LastPerson(const EventCoords& e) const {
    return e.ep * prop_p + std::min(e.off, prop_p - 1);
  }
  int64_t LastAuction(const EventCoords& e) const {
    if (e.off < prop_p) return (e.ep - 1) * prop_a + prop_a - 1;
    if (e.off >= prop_p + prop_a) return e.ep * prop_a + prop_a - 1;
    return e.ep * prop_a + e.off - prop_p;
  }
  int64_t NextPerson(const EventCoords& e, Rng* rng) const {
    const int64_t n = LastPerson(e) + 1;
    const int64_t active = std::min(n, config.num_active_people);
    return n - active + rng->Below(active + 10);
  }
  int64_t NextAuction(const EventCoords& e, Rng* rng) const {
    const int64_t m = LastAuction(e);
    const int64_t lo = std::max<int64_t>(m - config.num_in_flight_auctions, 0);
    return lo + rng->Below(m - lo + 11);
  }

  int64_t Price(Rng* rng) const {
    // round(10^(6u) * 100), log-uniform over [100, 1e8) cents.
    return static_cast<int64_t>(pow10x6(rng->Unit()) * 100.0 + 0.5);
  }

  /// extra(cur, avg) of NEXMARK.md 2.5 as a slice of the 1 MiB string.
  std::string_view Extra(int64_t cur, int64_t avg, Rng* rng) const {
    if (cur > avg) return {};
    const int64_t d = avg - cur;
    const auto delta =
        static_cast<int64_t>(std::floor(0.2 * static_cast<double>(d) + 0.5));
    int64_t len = d - delta;
    if (delta > 0) len += rng->Below(2 * delta);
    if (len <= 0) return {};
    const int64_t offset = rng->Below(kExtraStringBytes - len);
    return {tables->extra.data() + offset, static_cast<size_t>(len)};
  }

  arrow::Status AppendPerson(const EventCoords& e, int64_t ts, Rng* rng,
                             PersonColumns* c) {
    const int64_t row = c->rows;
    c->id.data[row] = kFirstPersonId + LastPerson(e);
    c->date_time.data[row] = ts;
    int64_t cur = 8;

    const auto first = kFirstNames[rng->Below(std::size(kFirstNames))];
    const auto last = kLastNames[rng->Below(std::size(kLastNames))];
    ARROW_RETURN_NOT_OK(
        c->name.Reserve(static_cast<int64_t>(first.size() + last.size() + 1)));
    char* p = c->name.tail();
    std::memcpy(p, first.data(), first.size());
    p[first.size()] = ' ';
    std::memcpy(p + first.size() + 1, last.data(), last.size());
    c->name.Commit(row, static_cast<int64_t>(first.size() + last.size() + 1));
    cur += static_cast<int64_t>(first.size() + last.size() + 1);

    ARROW_RETURN_NOT_OK(c->email.Reserve(6 + 1 + 4 + 4));
    p = c->email.tail();
    int n = RandomString(rng, 7, ' ', p);
    p[n++] = '@';
    n += RandomString(rng, 5, ' ', p + n);
    std::memcpy(p + n, ".com", 4);
    n += 4;
    c->email.Commit(row, n);
    cur += n;

    ARROW_RETURN_NOT_OK(c->credit_card.Reserve(19));
    p = c->credit_card.tail();
    for (int g = 0; g < 4; ++g) {
      std::memcpy(p + g * 5, tables->card_groups[rng->Below(10000)], 4);
      if (g < 3) p[g * 5 + 4] = ' ';
    }
    c->credit_card.Commit(row, 19);
    cur += 19;

    const auto city = kCities[rng->Below(std::size(kCities))];
    ARROW_RETURN_NOT_OK(c->city.Reserve(static_cast<int64_t>(city.size())));
    c->city.Append(row, city);
    cur += static_cast<int64_t>(city.size());

    const auto state = kStates[rng->Below(std::size(kStates))];
    ARROW_RETURN_NOT_OK(c->state.Reserve(2));
    c->state.Append(row, state);
    cur += 2;

    const auto extra = Extra(cur, config.avg_person_byte_size, rng);
    ARROW_RETURN_NOT_OK(c->extra.Reserve(static_cast<int64_t>(extra.size())));
    c->extra.Append(row, extra);
    c->rows = row + 1;
    return arrow::Status::OK();
  }

  arrow::Status AppendAuction(const EventCoords& e, int64_t ts, Rng* rng,
                              AuctionColumns* c) {
    const int64_t row = c->rows;
    c->id.data[row] = kFirstAuctionId + LastAuction(e);
    c->date_time.data[row] = ts;

    int64_t seller;
    if (rng->Below(config.hot_sellers_ratio) > 0) {
      seller = LastPerson(e) / 100 * 100;
    } else {
      seller = NextPerson(e, rng);
    }
    c->seller.data[row] = seller + kFirstPersonId;
    c->category.data[row] = kFirstCategoryId + rng->Below(kNumCategories);
    const int64_t initial_bid = Price(rng);
    c->initial_bid.data[row] = initial_bid;

    const int64_t horizon = TimeOf(e.adj + horizon_events) - TimeOf(e.adj);
    c->expires.data[row] = ts + 1 + rng->Below(std::max<int64_t>(horizon * 2, 1));

    ARROW_RETURN_NOT_OK(c->item_name.Reserve(19));
    const int item_len = RandomString(rng, 20, ' ', c->item_name.tail());
    c->item_name.Commit(row, item_len);
    ARROW_RETURN_NOT_OK(c->description.Reserve(99));
    const int desc_len = RandomString(rng, 100, ' ', c->description.tail());
    c->description.Commit(row, desc_len);

    c->reserve.data[row] = initial_bid + Price(rng);

    const auto extra = Extra(48 + item_len + desc_len, config.avg_auction_byte_size, rng);
    ARROW_RETURN_NOT_OK(c->extra.Reserve(static_cast<int64_t>(extra.size())));
    c->extra.Append(row, extra);
    c->rows = row + 1;
    return arrow::Status::OK();
  }

  /// Draws every field of a bid; the strings stay pointers into the shared tables
  /// until FlushBids copies them, so that their cache lines can be prefetched.
  PendingBid PlanBid(const EventCoords& e, int64_t ts, int64_t row, Rng* rng) const {
    PendingBid b;
    b.row = row;
    b.date_time = ts;
    int64_t auction_id;
    if (rng->Below(config.hot_auction_ratio) > 0) {
      auction_id = LastAuction(e) / 100 * 100;
    } else {
      auction_id = NextAuction(e, rng);
    }
    b.auction = auction_id + kFirstAuctionId;

    int64_t bidder;
    if (rng->Below(config.hot_bidders_ratio) > 0) {
      bidder = LastPerson(e) / 100 * 100 + 1;
    } else {
      bidder = NextPerson(e, rng);
    }
    // Flink adds FIRST_PERSON_ID twice (NEXMARK.md 2.5).
    b.bidder = bidder + 2 * kFirstPersonId;
    b.price = Price(rng);

    if (rng->Below(2) > 0) {
      const int64_t i = rng->Below(kNumHotChannels);
      b.channel = kHotChannels[i];
      b.url = tables->url(i);
    } else {
      const int64_t ch = rng->Below(kChannelCacheSize);
      b.channel = tables->channel(ch);
      b.url = tables->url(kNumHotChannels + ch);
    }
    b.extra = Extra(32, config.avg_bid_byte_size, rng);
    // The url and extra slices are random reads into ~1.8 MiB of tables: fetch
    // them now, copy them in FlushBids.
    __builtin_prefetch(b.channel.data());
    __builtin_prefetch(b.url.data());
    __builtin_prefetch(b.url.data() + b.url.size() - 1);
    if (!b.extra.empty()) {
      __builtin_prefetch(b.extra.data());
      __builtin_prefetch(b.extra.data() + b.extra.size() / 2);
      __builtin_prefetch(b.extra.data() + b.extra.size() - 1);
    }
    return b;
  }

  /// Writes the planned bids into `c`, padding the rows between them (combined
  /// view) with empty values.
  arrow::Status FlushBids(BidColumns* c) {
    int64_t channel_bytes = 0, url_bytes = 0, extra_bytes = 0;
    for (int i = 0; i < num_pending_bids; ++i) {
      channel_bytes += static_cast<int64_t>(pending_bids[i].channel.size());
      url_bytes += static_cast<int64_t>(pending_bids[i].url.size());
      extra_bytes += static_cast<int64_t>(pending_bids[i].extra.size());
    }
    ARROW_RETURN_NOT_OK(c->channel.Reserve(channel_bytes));
    ARROW_RETURN_NOT_OK(c->url.Reserve(url_bytes));
    ARROW_RETURN_NOT_OK(c->extra.Reserve(extra_bytes));
    for (int i = 0; i < num_pending_bids; ++i) {
      const PendingBid& b = pending_bids[i];
      c->PadTo(b.row);
      const int64_t row = b.row;
      c->auction.data[row] = b.auction;
      c->bidder.data[row] = b.bidder;
      c->price.data[row] = b.price;
      c->date_time.data[row] = b.date_time;
      c->channel.Append(row, b.channel);
      c->url.Append(row, b.url);
      c->extra.Append(row, b.extra);
      c->rows = row + 1;
    }
    num_pending_bids = 0;
    return arrow::Status::OK();
  }

  arrow::Status AddBid(const EventCoords& e, int64_t ts, int64_t row, Rng* rng,
                       BidColumns* c) {
    pending_bids[num_pending_bids++] = PlanBid(e, ts, row, rng);
    if (num_pending_bids == kBidBlock) return FlushBids(c);
    return arrow::Status::OK();
  }

  /// The event's dateTime: its timeline slot, moved back by the occasional delay.
  int64_t DateTime(const EventCoords& e) const {
    int64_t ts = TimeOf(e.adj);
    if (config.prob_delayed_event > 0.0) {
      Rng d(Mix64(delay_seed_mix + static_cast<uint64_t>(e.id) * 0x9e3779b97f4a7c15ULL));
      if (d.Unit() < config.prob_delayed_event)
        ts -= d.Below(config.occasional_delay_ms + 1);
    }
    return ts;
  }
  Rng EventRng(int64_t id) const {
    return Rng(Mix64(seed_mix + static_cast<uint64_t>(id) * 0x9e3779b97f4a7c15ULL));
  }

  /// Expected rows of kind `kind` among `events` events, for buffer sizing.
  int64_t ExpectedRows(int64_t events, int64_t proportion) const {
    return static_cast<int64_t>(static_cast<double>(events) *
                                static_cast<double>(proportion) /
                                static_cast<double>(total)) +
           1;
  }

  arrow::Result<std::shared_ptr<arrow::RecordBatch>> Next(int64_t max_events) {
    ARROW_RETURN_NOT_OK(status);
    auto batch = NextUnchecked(max_events);
    // A failed batch leaves the split position undefined: keep failing.
    if (!batch.ok()) status = batch.status();
    return batch;
  }

  arrow::Result<std::shared_ptr<arrow::RecordBatch>> NextUnchecked(int64_t max_events) {
    if (k >= count) return nullptr;
    const int64_t stop = k + std::min(count - k, std::max<int64_t>(max_events, 0));
    const int64_t capacity = std::min(config.batch_size, stop - k);
    switch (view) {
      case View::kCombined:
        return NextCombined(stop, capacity);
      case View::kPerson:
        return NextView<kPersonEvent>(stop, capacity, &person);
      case View::kAuction:
        return NextView<kAuctionEvent>(stop, capacity, &auction);
      case View::kBid:
        return NextView<kBidEvent>(stop, capacity, &bid);
    }
    return arrow::Status::UnknownError("nexmark: unknown view");
  }

  template <int Kind, typename Columns>
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> NextView(int64_t stop,
                                                              int64_t capacity,
                                                              Columns* cols) {
    const int64_t proportion =
        Kind == kPersonEvent ? prop_p
                             : (Kind == kAuctionEvent ? prop_a : config.bid_proportion);
    const int64_t expected_rows = std::min(capacity, ExpectedRows(stop - k, proportion));
    const int64_t avg_size = Kind == kPersonEvent
                                 ? config.avg_person_byte_size
                                 : (Kind == kAuctionEvent ? config.avg_auction_byte_size
                                                          : config.avg_bid_byte_size);
    ARROW_RETURN_NOT_OK(cols->Init(capacity, expected_rows, avg_size, pool));
    while (k < stop && cols->rows + num_pending_bids < capacity) {
      const EventCoords e = Coords(k);
      ++k;
      if (KindOf(e) != Kind) continue;
      const int64_t ts = DateTime(e);
      Rng rng = EventRng(e.id);
      if constexpr (Kind == kPersonEvent) {
        ARROW_RETURN_NOT_OK(AppendPerson(e, ts, &rng, cols));
      } else if constexpr (Kind == kAuctionEvent) {
        ARROW_RETURN_NOT_OK(AppendAuction(e, ts, &rng, cols));
      } else {
        ARROW_RETURN_NOT_OK(AddBid(e, ts, cols->rows + num_pending_bids, &rng, cols));
      }
    }
    if constexpr (Kind == kBidEvent) ARROW_RETURN_NOT_OK(FlushBids(cols));
    const int64_t rows = cols->rows;
    ARROW_ASSIGN_OR_RAISE(auto children, cols->Finish());
    return arrow::RecordBatch::Make(schema, rows, std::move(children));
  }

  arrow::Result<std::shared_ptr<arrow::RecordBatch>> NextCombined(int64_t stop,
                                                                  int64_t capacity) {
    ARROW_RETURN_NOT_OK(event_type.Init(capacity, pool));
    ARROW_RETURN_NOT_OK(date_time.Init(capacity, pool));
    ARROW_RETURN_NOT_OK(person.Init(capacity, ExpectedRows(capacity, prop_p),
                                    config.avg_person_byte_size, pool));
    ARROW_RETURN_NOT_OK(auction.Init(capacity, ExpectedRows(capacity, prop_a),
                                     config.avg_auction_byte_size, pool));
    ARROW_RETURN_NOT_OK(bid.Init(capacity, ExpectedRows(capacity, config.bid_proportion),
                                 config.avg_bid_byte_size, pool));
    person_rows.clear();
    auction_rows.clear();

    int64_t row = 0;
    while (k < stop && row < capacity) {
      const EventCoords e = Coords(k);
      ++k;
      const int kind = KindOf(e);
      const int64_t ts = DateTime(e);
      Rng rng = EventRng(e.id);
      event_type.data[row] = kind;
      date_time.data[row] = ts;
      switch (kind) {
        case kPersonEvent:
          person.PadTo(row);
          ARROW_RETURN_NOT_OK(AppendPerson(e, ts, &rng, &person));
          person_rows.push_back(row);
          break;
        case kAuctionEvent:
          auction.PadTo(row);
          ARROW_RETURN_NOT_OK(AppendAuction(e, ts, &rng, &auction));
          auction_rows.push_back(row);
          break;
        default:
          ARROW_RETURN_NOT_OK(AddBid(e, ts, row, &rng, &bid));
          break;
      }
      ++row;
    }
    const int64_t rows = row;
    ARROW_RETURN_NOT_OK(FlushBids(&bid));
    person.PadTo(rows);
    auction.PadTo(rows);
    bid.PadTo(rows);

    // Validity: a struct is valid exactly on the rows of its kind.
    ARROW_ASSIGN_OR_RAISE(auto person_valid, arrow::AllocateEmptyBitmap(rows, pool));
    ARROW_ASSIGN_OR_RAISE(auto auction_valid, arrow::AllocateEmptyBitmap(rows, pool));
    ARROW_ASSIGN_OR_RAISE(auto bid_valid, arrow::AllocateBitmap(rows, pool));
    if (rows > 0) {
      std::memset(bid_valid->mutable_data(), 0xff,
                  static_cast<size_t>(bid_valid->size()));
    }
    for (int64_t r : person_rows) {
      arrow::bit_util::SetBit(person_valid->mutable_data(), r);
      arrow::bit_util::ClearBit(bid_valid->mutable_data(), r);
    }
    for (int64_t r : auction_rows) {
      arrow::bit_util::SetBit(auction_valid->mutable_data(), r);
      arrow::bit_util::ClearBit(bid_valid->mutable_data(), r);
    }
    const auto num_persons = static_cast<int64_t>(person_rows.size());
    const auto num_auctions = static_cast<int64_t>(auction_rows.size());
    const int64_t num_bids = rows - num_persons - num_auctions;

    const auto& fields = CombinedSchema()->fields();
    std::vector<std::shared_ptr<arrow::ArrayData>> columns(5);
    ARROW_ASSIGN_OR_RAISE(columns[0], event_type.Finish(arrow::int32(), rows));
    ARROW_ASSIGN_OR_RAISE(auto person_children, person.Finish());
    columns[1] = arrow::ArrayData::Make(fields[1]->type(), rows,
                                        {std::move(person_valid)}, rows - num_persons);
    columns[1]->child_data = std::move(person_children);
    ARROW_ASSIGN_OR_RAISE(auto auction_children, auction.Finish());
    columns[2] = arrow::ArrayData::Make(fields[2]->type(), rows,
                                        {std::move(auction_valid)}, rows - num_auctions);
    columns[2]->child_data = std::move(auction_children);
    ARROW_ASSIGN_OR_RAISE(auto bid_children, bid.Finish());
    columns[3] = arrow::ArrayData::Make(fields[3]->type(), rows, {std::move(bid_valid)},
                                        rows - num_bids);
    columns[3]->child_data = std::move(bid_children);
    ARROW_ASSIGN_OR_RAISE(columns[4], date_time.Finish(TimestampType(), rows));
    return arrow::RecordBatch::Make(schema, rows, std::move(columns));
  }
};

NexmarkGenerator::NexmarkGenerator(NexmarkConfig config, int split_index, int num_splits,
                                   arrow::MemoryPool* pool)
    : impl_(std::make_unique<Impl>(std::move(config), split_index, num_splits, pool)) {}

NexmarkGenerator::~NexmarkGenerator() = default;

arrow::Result<std::unique_ptr<NexmarkGenerator>> NexmarkGenerator::Make(
    NexmarkConfig config, int split_index, int num_splits, arrow::MemoryPool* pool) {
  auto gen = std::make_unique<NexmarkGenerator>(std::move(config), split_index,
                                                num_splits, pool);
  ARROW_RETURN_NOT_OK(gen->impl_->status);
  return gen;
}

const NexmarkConfig& NexmarkGenerator::config() const { return impl_->config; }

std::shared_ptr<arrow::Schema> NexmarkGenerator::schema() const {
  auto s = SchemaForView(impl_->config.view);
  return s ? s : CombinedSchema();
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> NexmarkGenerator::NextBatch() {
  return impl_->Next(std::numeric_limits<int64_t>::max());
}

arrow::Result<std::shared_ptr<arrow::RecordBatch>> NexmarkGenerator::NextBatch(
    int64_t max_events) {
  return impl_->Next(max_events);
}

int64_t NexmarkGenerator::events_generated() const { return impl_->k; }
int64_t NexmarkGenerator::split_num_events() const { return impl_->count; }

arrow::Status NexmarkGenerator::SkipTo(int64_t events) {
  ARROW_RETURN_NOT_OK(impl_->status);
  if (events < 0 || events > impl_->count) {
    return arrow::Status::Invalid("nexmark: cannot position a split of ", impl_->count,
                                  " events at event ", events);
  }
  impl_->k = events;
  return arrow::Status::OK();
}
bool NexmarkGenerator::exhausted() const { return impl_->k >= impl_->count; }

int64_t NexmarkGenerator::next_event_time_ms() const {
  if (!impl_->status.ok()) return impl_->config.base_time_ms;
  return impl_->TimeOf(impl_->Adjust(1 + impl_->k));
}

}  // namespace sabot::nexmark
