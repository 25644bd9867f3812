#include "sabot/connectors/nexmark/generator.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <arrow/compute/initialize.h>
#include <gtest/gtest.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <limits>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "sabot/connectors/nexmark/nexmark_source.h"
#include "sabot/plan/registry.h"

namespace sabot::nexmark {
namespace {

#define NEXMARK_ASSERT_OK(expr)              \
  do {                                       \
    const ::arrow::Status _st = (expr);      \
    ASSERT_TRUE(_st.ok()) << _st.ToString(); \
  } while (false)

#define NEXMARK_ASSERT_OK_AND_ASSIGN(lhs, rexpr)                  \
  auto&& _res_##lhs = (rexpr);                                    \
  ASSERT_TRUE(_res_##lhs.ok()) << _res_##lhs.status().ToString(); \
  lhs = std::move(_res_##lhs).ValueOrDie()

NexmarkConfig SmallConfig(int64_t num_events, const std::string& view = "combined") {
  NexmarkConfig c;
  c.num_events = num_events;
  c.view = view;
  return c;
}

/// Every batch of one split, each checked with ValidateFull.
std::vector<std::shared_ptr<arrow::RecordBatch>> Drain(NexmarkGenerator* gen) {
  std::vector<std::shared_ptr<arrow::RecordBatch>> out;
  while (true) {
    auto batch = gen->NextBatch();
    EXPECT_TRUE(batch.ok()) << batch.status().ToString();
    if (!batch.ok() || *batch == nullptr) break;
    EXPECT_TRUE((*batch)->ValidateFull().ok()) << (*batch)->ValidateFull().ToString();
    out.push_back(*batch);
  }
  return out;
}

std::shared_ptr<arrow::Table> DrainTable(const NexmarkConfig& config, int split = 0,
                                         int num_splits = 1) {
  NexmarkGenerator gen(config, split, num_splits);
  auto batches = Drain(&gen);
  auto table = arrow::Table::FromRecordBatches(gen.schema(), batches);
  EXPECT_TRUE(table.ok()) << table.status().ToString();
  auto combined = (*table)->CombineChunks();
  EXPECT_TRUE(combined.ok());
  return *combined;
}

template <typename ArrayType>
std::shared_ptr<ArrayType> Column(const arrow::Table& t, const std::string& name) {
  auto chunked = t.GetColumnByName(name);
  EXPECT_NE(chunked, nullptr) << name;
  EXPECT_EQ(chunked->num_chunks(), 1);
  return std::static_pointer_cast<ArrayType>(chunked->chunk(0));
}

using Int64Col = arrow::Int64Array;
using TsCol = arrow::TimestampArray;
using StrCol = arrow::StringArray;

// --------------------------------------------------------------------------
// Schemas

TEST(NexmarkSchema, CombinedLayout) {
  auto s = CombinedSchema();
  ASSERT_EQ(s->num_fields(), 5);
  EXPECT_EQ(s->field(0)->name(), "event_type");
  EXPECT_TRUE(s->field(0)->type()->Equals(arrow::int32()));
  EXPECT_EQ(s->field(4)->name(), "dateTime");
  EXPECT_TRUE(
      s->field(4)->type()->Equals(arrow::timestamp(arrow::TimeUnit::MILLI, "UTC")));
  auto names = [](const std::shared_ptr<arrow::DataType>& t) {
    std::vector<std::string> out;
    for (const auto& f : t->fields()) out.push_back(f->name());
    return out;
  };
  EXPECT_EQ(names(s->field(1)->type()),
            (std::vector<std::string>{"id", "name", "emailAddress", "creditCard", "city",
                                      "state", "dateTime", "extra"}));
  EXPECT_EQ(
      names(s->field(2)->type()),
      (std::vector<std::string>{"id", "itemName", "description", "initialBid", "reserve",
                                "dateTime", "expires", "seller", "category", "extra"}));
  EXPECT_EQ(names(s->field(3)->type()),
            (std::vector<std::string>{"auction", "bidder", "price", "channel", "url",
                                      "dateTime", "extra"}));
  EXPECT_TRUE(PersonSchema()->Equals(arrow::schema(s->field(1)->type()->fields())));
  EXPECT_TRUE(AuctionSchema()->Equals(arrow::schema(s->field(2)->type()->fields())));
  EXPECT_TRUE(BidSchema()->Equals(arrow::schema(s->field(3)->type()->fields())));
}

// --------------------------------------------------------------------------
// Config validation

void ExpectInvalid(const NexmarkConfig& c, const std::string& field) {
  const arrow::Status st = ValidateConfig(c);
  EXPECT_TRUE(st.IsInvalid()) << field << ": " << st.ToString();
  EXPECT_NE(st.message().find(field), std::string::npos) << st.message();
}

TEST(NexmarkConfig, ValidateRejectsBadValues) {
  EXPECT_TRUE(ValidateConfig(NexmarkConfig{}).ok());
  NexmarkConfig c;
  c.first_event_rate = -5;
  ExpectInvalid(c, "first_event_rate");
  c = {};
  c.first_event_rate = 0;
  ExpectInvalid(c, "first_event_rate");
  c = {};
  c.person_proportion = c.auction_proportion = c.bid_proportion = 0;
  ExpectInvalid(c, "proportion");
  c = {};
  c.bid_proportion = -1;
  ExpectInvalid(c, "bid_proportion");
  c = {};
  c.view = "bids";
  ExpectInvalid(c, "view");
  c = {};
  c.num_events = -1;
  ExpectInvalid(c, "num_events");
  c = {};
  c.batch_size = 0;
  ExpectInvalid(c, "batch_size");
  c = {};
  c.hot_bidders_ratio = 0;
  ExpectInvalid(c, "hot_bidders_ratio");
  c = {};
  c.prob_delayed_event = 1.5;
  ExpectInvalid(c, "prob_delayed_event");
  c = {};
  c.out_of_order_group_size = 0;
  ExpectInvalid(c, "out_of_order_group_size");
  c = {};
  c.rate_limit = -1;
  ExpectInvalid(c, "rate_limit");
  c = {};
  c.avg_bid_byte_size = -1;
  ExpectInvalid(c, "avg_bid_byte_size");
}

TEST(NexmarkConfig, GeneratorReportsBadConfig) {
  NexmarkConfig c;
  c.view = "nope";
  EXPECT_FALSE(NexmarkGenerator::Make(c, 0, 1).ok());
  NexmarkGenerator gen(c, 0, 1);
  auto batch = gen.NextBatch();
  ASSERT_FALSE(batch.ok());
  EXPECT_NE(batch.status().message().find("view"), std::string::npos);
  EXPECT_FALSE(NexmarkGenerator::Make(NexmarkConfig{}, 4, 4).ok());
  EXPECT_FALSE(NexmarkGenerator::Make(NexmarkConfig{}, 0, 0).ok());
}

// --------------------------------------------------------------------------
// Determinism

TEST(NexmarkGenerator, SameConfigSameBatches) {
  for (const std::string view : {"combined", "bid", "auction", "person"}) {
    NexmarkConfig c = SmallConfig(60000, view);
    c.batch_size = 4096;
    NexmarkGenerator a(c, 0, 1), b(c, 0, 1);
    auto xs = Drain(&a);
    auto ys = Drain(&b);
    ASSERT_EQ(xs.size(), ys.size()) << view;
    ASSERT_FALSE(xs.empty());
    for (size_t i = 0; i < xs.size(); ++i) {
      EXPECT_TRUE(xs[i]->Equals(*ys[i])) << view << " batch " << i;
    }
  }
}

TEST(NexmarkGenerator, DifferentSeedsDiffer) {
  NexmarkConfig c = SmallConfig(20000, "bid");
  auto t1 = DrainTable(c);
  c.seed = 43;
  auto t2 = DrainTable(c);
  ASSERT_EQ(t1->num_rows(), t2->num_rows());
  EXPECT_FALSE(t1->Equals(*t2));
  // Timestamps do not depend on the seed, the values do.
  EXPECT_TRUE(t1->GetColumnByName("dateTime")->Equals(t2->GetColumnByName("dateTime")));
  EXPECT_FALSE(t1->GetColumnByName("price")->Equals(t2->GetColumnByName("price")));
  EXPECT_FALSE(t1->GetColumnByName("extra")->Equals(t2->GetColumnByName("extra")));
  EXPECT_FALSE(t1->GetColumnByName("url")->Equals(t2->GetColumnByName("url")));
}

TEST(NexmarkGenerator, IndependentOfBatchSize) {
  for (const std::string view : {"combined", "bid", "person"}) {
    NexmarkConfig c = SmallConfig(50003, view);
    c.batch_size = 1000;
    auto small = DrainTable(c);
    c.batch_size = 8192;
    auto large = DrainTable(c);
    ASSERT_GT(small->num_rows(), 0);
    EXPECT_TRUE(small->Equals(*large)) << view;
  }
  // Every batch but the last is full.
  NexmarkConfig c = SmallConfig(50003, "bid");
  c.batch_size = 1000;
  NexmarkGenerator gen(c, 0, 1);
  auto batches = Drain(&gen);
  for (size_t i = 0; i + 1 < batches.size(); ++i) EXPECT_EQ(batches[i]->num_rows(), 1000);
  EXPECT_EQ(gen.events_generated(), 50003);
  EXPECT_TRUE(gen.exhausted());
}

// --------------------------------------------------------------------------
// Event mix, ids and field recipes

TEST(NexmarkGenerator, EventMixIsExact) {
  auto t = DrainTable(SmallConfig(1000000));
  ASSERT_EQ(t->num_rows(), 1000000);
  auto types = Column<arrow::Int32Array>(*t, "event_type");
  int64_t counts[3] = {0, 0, 0};
  for (int64_t i = 0; i < types->length(); ++i) {
    ASSERT_GE(types->Value(i), 0);
    ASSERT_LE(types->Value(i), 2);
    ++counts[types->Value(i)];
  }
  EXPECT_EQ(counts[kPersonEvent], 20000);
  EXPECT_EQ(counts[kAuctionEvent], 60000);
  EXPECT_EQ(counts[kBidEvent], 920000);
  // Split 0 starts at id 2: two auctions, 46 bids, a person, three auctions.
  EXPECT_EQ(types->Value(0), kAuctionEvent);
  EXPECT_EQ(types->Value(1), kAuctionEvent);
  for (int i = 2; i < 48; ++i) EXPECT_EQ(types->Value(i), kBidEvent) << i;
  EXPECT_EQ(types->Value(48), kPersonEvent);
  EXPECT_EQ(types->Value(49), kAuctionEvent);
  // Only the struct of the event's kind is valid.
  auto person = t->GetColumnByName("person")->chunk(0);
  auto auction = t->GetColumnByName("auction")->chunk(0);
  auto bid = t->GetColumnByName("bid")->chunk(0);
  EXPECT_EQ(person->null_count(), 1000000 - 20000);
  EXPECT_EQ(auction->null_count(), 1000000 - 60000);
  EXPECT_EQ(bid->null_count(), 1000000 - 920000);
  for (int64_t i = 0; i < 2000; ++i) {
    EXPECT_EQ(person->IsValid(i), types->Value(i) == kPersonEvent);
    EXPECT_EQ(auction->IsValid(i), types->Value(i) == kAuctionEvent);
    EXPECT_EQ(bid->IsValid(i), types->Value(i) == kBidEvent);
  }
}

TEST(NexmarkGenerator, EntityIdsAreConsecutive) {
  auto persons = DrainTable(SmallConfig(200000, "person"));
  auto auctions = DrainTable(SmallConfig(200000, "auction"));
  auto pid = Column<Int64Col>(*persons, "id");
  auto aid = Column<Int64Col>(*auctions, "id");
  ASSERT_EQ(pid->length(), 4000);
  ASSERT_EQ(aid->length(), 12000);
  for (int64_t i = 0; i < pid->length(); ++i) ASSERT_EQ(pid->Value(i), 1001 + i);
  for (int64_t i = 0; i < aid->length(); ++i) ASSERT_EQ(aid->Value(i), 1001 + i);
}

TEST(NexmarkGenerator, HotRatios) {
  auto bids = DrainTable(SmallConfig(1000000, "bid"));
  auto auctions = DrainTable(SmallConfig(1000000, "auction"));
  auto auction = Column<Int64Col>(*bids, "auction");
  auto bidder = Column<Int64Col>(*bids, "bidder");
  auto seller = Column<Int64Col>(*auctions, "seller");
  ASSERT_EQ(auction->length(), 920000);
  int64_t hot_auctions = 0, hot_bidders = 0, hot_sellers = 0;
  for (int64_t i = 0; i < auction->length(); ++i) {
    // Hot auction: (lastA div 100) * 100 + 1000. Hot bidder: (lastP div 100) * 100 + 1,
    // then + 1000 twice.
    hot_auctions += (auction->Value(i) - 1000) % 100 == 0;
    hot_bidders += (bidder->Value(i) - 2000) % 100 == 1;
    ASSERT_GE(auction->Value(i), 1000);
    ASSERT_GE(bidder->Value(i), 2000);
  }
  for (int64_t i = 0; i < seller->length(); ++i) {
    hot_sellers += (seller->Value(i) - 1000) % 100 == 0;
  }
  const double fa = static_cast<double>(hot_auctions) / auction->length();
  const double fb = static_cast<double>(hot_bidders) / bidder->length();
  const double fs = static_cast<double>(hot_sellers) / seller->length();
  // Expected: the hot share plus the ~1% of cold picks that land on a hot id.
  EXPECT_NEAR(fa, 0.5, 0.015) << fa;
  EXPECT_NEAR(fb, 0.75, 0.015) << fb;
  EXPECT_NEAR(fs, 0.75, 0.015) << fs;
  // Without hot items the shares drop to the chance level.
  NexmarkConfig c = SmallConfig(200000, "bid");
  c.hot_auction_ratio = 1;
  c.hot_bidders_ratio = 1;
  auto cold = DrainTable(c);
  auto cold_auction = Column<Int64Col>(*cold, "auction");
  int64_t cold_hot = 0;
  for (int64_t i = 0; i < cold_auction->length(); ++i) {
    cold_hot += (cold_auction->Value(i) - 1000) % 100 == 0;
  }
  EXPECT_LT(static_cast<double>(cold_hot) / cold_auction->length(), 0.05);
}

TEST(NexmarkGenerator, BidFields) {
  auto t = DrainTable(SmallConfig(200000, "bid"));
  auto price = Column<Int64Col>(*t, "price");
  auto channel = Column<StrCol>(*t, "channel");
  auto url = Column<StrCol>(*t, "url");
  auto extra = Column<StrCol>(*t, "extra");
  auto auction = Column<Int64Col>(*t, "auction");
  const std::set<std::string> hot = {"Google", "Facebook", "Baidu", "Apple"};
  std::set<std::string> hot_urls;
  int64_t hot_count = 0, with_channel_id = 0, cold_count = 0, low_price = 0;
  int64_t max_auction_seen = 0;
  for (int64_t i = 0; i < t->num_rows(); ++i) {
    const int64_t p = price->Value(i);
    ASSERT_GE(p, 100);
    ASSERT_LE(p, 100000000);
    low_price += p < 10000;
    const std::string ch(channel->GetView(i));
    const std::string u(url->GetView(i));
    ASSERT_EQ(u.rfind("https://www.nexmark.com/", 0), 0u) << u;
    ASSERT_NE(u.find("/item.htm?query=1"), std::string::npos) << u;
    if (hot.count(ch)) {
      ++hot_count;
      hot_urls.insert(u);
      ASSERT_EQ(u.find("channel_id"), std::string::npos) << u;
    } else {
      ++cold_count;
      ASSERT_EQ(ch.rfind("channel-", 0), 0u) << ch;
      const int c = std::stoi(ch.substr(8));
      ASSERT_GE(c, 0);
      ASSERT_LT(c, 10000);
      with_channel_id += u.find("&channel_id=") != std::string::npos;
    }
    const auto e = extra->GetView(i);
    ASSERT_GE(e.size(), 54u);
    ASSERT_LE(e.size(), 81u);
    for (char ch2 : e) {
      ASSERT_GE(ch2, 'H');
      ASSERT_LE(ch2, 'z');
    }
    // Bids reference at most 10 auctions beyond the newest one.
    max_auction_seen = std::max(max_auction_seen, auction->Value(i));
  }
  EXPECT_EQ(hot_urls.size(), 4u);
  EXPECT_NEAR(static_cast<double>(hot_count) / t->num_rows(), 0.5, 0.02);
  EXPECT_NEAR(static_cast<double>(with_channel_id) / cold_count, 0.9, 0.02);
  // Log-uniform over [100, 1e8): a third below 1e4.
  EXPECT_NEAR(static_cast<double>(low_price) / t->num_rows(), 1.0 / 3, 0.02);
  // 200000 events hold 12000 auctions (ids 1001..13000).
  EXPECT_LE(max_auction_seen, 13000 + 10);
}

TEST(NexmarkGenerator, PersonAndAuctionFields) {
  auto persons = DrainTable(SmallConfig(200000, "person"));
  auto name = Column<StrCol>(*persons, "name");
  auto email = Column<StrCol>(*persons, "emailAddress");
  auto card = Column<StrCol>(*persons, "creditCard");
  auto state = Column<StrCol>(*persons, "state");
  auto city = Column<StrCol>(*persons, "city");
  auto pextra = Column<StrCol>(*persons, "extra");
  const std::set<std::string> states = {"AZ", "CA", "ID", "OR", "WA", "WY"};
  const std::set<std::string> cities = {
      "Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland",
      "Bend",    "Redmond",     "Seattle",       "Kent",  "Cheyenne"};
  for (int64_t i = 0; i < persons->num_rows(); ++i) {
    const std::string n(name->GetView(i));
    ASSERT_NE(n.find(' '), std::string::npos) << n;
    const std::string e(email->GetView(i));
    ASSERT_NE(e.find('@'), std::string::npos) << e;
    ASSERT_EQ(e.substr(e.size() - 4), ".com") << e;
    const std::string cc(card->GetView(i));
    ASSERT_EQ(cc.size(), 19u) << cc;
    for (int k = 0; k < 19; ++k) {
      if (k % 5 == 4) {
        ASSERT_EQ(cc[k], ' ') << cc;
      } else {
        ASSERT_TRUE(cc[k] >= '0' && cc[k] <= '9') << cc;
      }
    }
    ASSERT_TRUE(states.count(std::string(state->GetView(i))));
    ASSERT_TRUE(cities.count(std::string(city->GetView(i))));
    const int64_t cur =
        8 + n.size() + e.size() + 19 + city->GetView(i).size() + state->GetView(i).size();
    const int64_t d = 200 - cur;
    const int64_t delta = (2 * d + 5) / 10;
    ASSERT_GE(static_cast<int64_t>(pextra->GetView(i).size()), d - delta);
    ASSERT_LE(static_cast<int64_t>(pextra->GetView(i).size()), d + delta);
  }

  auto auctions = DrainTable(SmallConfig(200000, "auction"));
  auto initial = Column<Int64Col>(*auctions, "initialBid");
  auto reserve = Column<Int64Col>(*auctions, "reserve");
  auto category = Column<Int64Col>(*auctions, "category");
  auto dt = Column<TsCol>(*auctions, "dateTime");
  auto expires = Column<TsCol>(*auctions, "expires");
  auto item = Column<StrCol>(*auctions, "itemName");
  auto desc = Column<StrCol>(*auctions, "description");
  auto seller = Column<Int64Col>(*auctions, "seller");
  auto aid = Column<Int64Col>(*auctions, "id");
  int64_t max_len_ms = 0;
  for (int64_t i = 0; i < auctions->num_rows(); ++i) {
    ASSERT_GE(reserve->Value(i), initial->Value(i) + 100);
    ASSERT_GE(category->Value(i), 10);
    ASSERT_LE(category->Value(i), 14);
    ASSERT_GT(expires->Value(i), dt->Value(i));
    max_len_ms = std::max(max_len_ms, expires->Value(i) - dt->Value(i));
    ASSERT_LE(item->GetView(i).size(), 19u);
    ASSERT_LE(desc->GetView(i).size(), 99u);
    // Trimmed like Java's String.trim() (an all-space string becomes empty).
    if (!desc->GetView(i).empty()) {
      ASSERT_NE(desc->GetView(i).front(), ' ');
      ASSERT_NE(desc->GetView(i).back(), ' ');
    }
    // Sellers exist or are at most 10 persons ahead: auction a (base 0) sits in
    // epoch a div 3, which has seen (a div 3) + 1 persons.
    const int64_t a = aid->Value(i) - 1000;
    ASSERT_LE(seller->Value(i) - 1000, a / 3 + 10);
  }
  // Horizon at 10000 events/s: 1666 events = 166 ms, so lengths reach ~333 ms.
  EXPECT_GT(max_len_ms, 250);
  EXPECT_LE(max_len_ms, 334);
}

// --------------------------------------------------------------------------
// Time

TEST(NexmarkGenerator, TimestampsFollowTheRate) {
  NexmarkConfig c = SmallConfig(100000);
  auto t = DrainTable(c);
  auto ts = Column<TsCol>(*t, "dateTime");
  for (int64_t i = 0; i < ts->length(); ++i) {
    // Event number i + 1 at 100 us each.
    ASSERT_EQ(ts->Value(i), c.base_time_ms + (i + 1) / 10) << i;
  }
  // The nested dateTime equals the top-level one.
  auto bid =
      std::static_pointer_cast<arrow::StructArray>(t->GetColumnByName("bid")->chunk(0));
  auto nested = std::static_pointer_cast<TsCol>(bid->GetFieldByName("dateTime"));
  for (int64_t i = 0; i < ts->length(); ++i) {
    if (bid->IsValid(i)) {
      ASSERT_EQ(nested->Value(i), ts->Value(i));
    }
  }
  NexmarkGenerator gen(c, 0, 1);
  EXPECT_EQ(gen.next_event_time_ms(), c.base_time_ms);
}

TEST(NexmarkGenerator, MonotoneWithoutDelay) {
  auto t = DrainTable(SmallConfig(300000));
  auto ts = Column<TsCol>(*t, "dateTime");
  for (int64_t i = 1; i < ts->length(); ++i)
    ASSERT_LE(ts->Value(i - 1), ts->Value(i)) << i;
}

TEST(NexmarkGenerator, OccasionalDelays) {
  NexmarkConfig c = SmallConfig(300000, "bid");
  c.first_event_rate = 1000;
  c.prob_delayed_event = 0.1;
  c.occasional_delay_ms = 3000;
  auto t = DrainTable(c);
  auto ts = Column<TsCol>(*t, "dateTime");
  int64_t max_seen = std::numeric_limits<int64_t>::min();
  int64_t back_in_time = 0, max_back = 0;
  for (int64_t i = 0; i < ts->length(); ++i) {
    if (ts->Value(i) < max_seen) {
      ++back_in_time;
      max_back = std::max(max_back, max_seen - ts->Value(i));
    }
    max_seen = std::max(max_seen, ts->Value(i));
  }
  EXPECT_GT(back_in_time, t->num_rows() / 20);
  EXPECT_LE(max_back, 3000);
  EXPECT_GT(max_back, 2500);
  // The delay has its own random stream: every other column is unchanged.
  c.prob_delayed_event = 0;
  auto undelayed = DrainTable(c);
  for (const std::string name :
       {"auction", "bidder", "price", "channel", "url", "extra"}) {
    EXPECT_TRUE(t->GetColumnByName(name)->Equals(undelayed->GetColumnByName(name)))
        << name;
  }
  EXPECT_FALSE(
      t->GetColumnByName("dateTime")->Equals(undelayed->GetColumnByName("dateTime")));
}

TEST(NexmarkGenerator, OutOfOrderGroups) {
  NexmarkConfig c = SmallConfig(100000, "auction");
  c.out_of_order_group_size = 20;
  c.first_event_rate = 1000;  // one event per ms, so permuted events differ in time
  auto t = DrainTable(c);
  auto ids = Column<Int64Col>(*t, "id");
  auto ts = Column<TsCol>(*t, "dateTime");
  int64_t id_descents = 0, ts_descents = 0;
  for (int64_t i = 1; i < ids->length(); ++i) {
    id_descents += ids->Value(i) < ids->Value(i - 1);
    ts_descents += ts->Value(i) < ts->Value(i - 1);
  }
  EXPECT_GT(id_descents, 0);
  EXPECT_GT(ts_descents, 0);
  // 100000 events permuted within groups of 20 cover the same event numbers, so
  // the same auctions, as the in-order sequence.
  std::vector<int64_t> sorted(ids->raw_values(), ids->raw_values() + ids->length());
  std::sort(sorted.begin(), sorted.end());
  c.out_of_order_group_size = 1;
  auto in_order = DrainTable(c);
  auto in_order_ids = Column<Int64Col>(*in_order, "id");
  const std::vector<int64_t> expected(
      in_order_ids->raw_values(), in_order_ids->raw_values() + in_order_ids->length());
  EXPECT_EQ(sorted, expected);
}

// --------------------------------------------------------------------------
// Splits and views

TEST(NexmarkGenerator, SplitsAreDisjointAndShareTheTimeline) {
  NexmarkConfig c = SmallConfig(100003);
  int64_t total = 0;
  std::set<int64_t> person_ids, auction_ids;
  std::vector<std::shared_ptr<arrow::Table>> tables;
  for (int i = 0; i < 4; ++i) {
    NexmarkGenerator gen(c, i, 4);
    EXPECT_EQ(gen.split_num_events(), i < 3 ? 25000 : 25003);
    auto t = DrainTable(c, i, 4);
    total += t->num_rows();
    auto persons = std::static_pointer_cast<arrow::StructArray>(
        t->GetColumnByName("person")->chunk(0));
    auto auctions = std::static_pointer_cast<arrow::StructArray>(
        t->GetColumnByName("auction")->chunk(0));
    auto pid = std::static_pointer_cast<Int64Col>(persons->field(0));
    auto aid = std::static_pointer_cast<Int64Col>(auctions->field(0));
    for (int64_t r = 0; r < t->num_rows(); ++r) {
      if (persons->IsValid(r)) {
        ASSERT_TRUE(person_ids.insert(pid->Value(r)).second);
      }
      if (auctions->IsValid(r)) {
        ASSERT_TRUE(auction_ids.insert(aid->Value(r)).second);
      }
    }
    tables.push_back(t);
  }
  EXPECT_EQ(total, 100003);
  EXPECT_EQ(person_ids.size(), 2000u);
  // Shared timeline: the k-th event of every split has the same dateTime, and with
  // num_generators = 0 (= 4 splits) each split runs at a quarter of the rate.
  auto ts0 = Column<TsCol>(*tables[0], "dateTime");
  for (int i = 1; i < 4; ++i) {
    auto tsi = Column<TsCol>(*tables[i], "dateTime");
    for (int64_t r = 0; r < 25000; ++r) ASSERT_EQ(tsi->Value(r), ts0->Value(r));
  }
  EXPECT_EQ(ts0->Value(24999), c.base_time_ms + 25000 * 400 / 1000);
}

/// The combined stream filtered on event_type and flattened, as a table.
std::shared_ptr<arrow::Table> FilterAndFlatten(
    const arrow::Table& combined, int kind, const std::string& column,
    const std::shared_ptr<arrow::Schema>& schema) {
  EXPECT_TRUE(arrow::compute::Initialize().ok());
  auto types = combined.GetColumnByName("event_type");
  auto mask =
      arrow::compute::CallFunction("equal", {types, arrow::MakeScalar(int32_t{kind})});
  EXPECT_TRUE(mask.ok()) << mask.status().ToString();
  auto filtered = arrow::compute::Filter(combined.GetColumnByName(column), *mask);
  EXPECT_TRUE(filtered.ok()) << filtered.status().ToString();
  auto chunked = filtered->chunked_array();
  auto array = arrow::Concatenate(chunked->chunks()).ValueOrDie();
  auto flat = std::static_pointer_cast<arrow::StructArray>(array)->Flatten().ValueOrDie();
  return arrow::Table::Make(schema, flat);
}

TEST(NexmarkGenerator, ViewsEqualFilteredCombined) {
  NexmarkConfig c = SmallConfig(120000);
  c.batch_size = 3000;
  auto combined = DrainTable(c);
  struct Case {
    std::string view;
    int kind;
    std::string column;
    std::shared_ptr<arrow::Schema> schema;
  };
  for (const auto& k : {Case{"bid", kBidEvent, "bid", BidSchema()},
                        Case{"auction", kAuctionEvent, "auction", AuctionSchema()},
                        Case{"person", kPersonEvent, "person", PersonSchema()}}) {
    NexmarkConfig vc = c;
    vc.view = k.view;
    vc.batch_size = 777;
    auto view = DrainTable(vc);
    auto expected = FilterAndFlatten(*combined, k.kind, k.column, k.schema);
    ASSERT_GT(view->num_rows(), 0);
    EXPECT_EQ(view->num_rows(), expected->num_rows()) << k.view;
    EXPECT_TRUE(view->Equals(*expected)) << k.view;
  }
}

// --------------------------------------------------------------------------
// Source reader

TEST(NexmarkSource, RegistryCreatesReadersForEverySplit) {
  OperatorRegistry registry;
  RegisterNexmarkSource(&registry);
  RegisterNexmarkSource(&registry);  // a second call is harmless
  ASSERT_TRUE(registry.IsSource("nexmark_source"));

  NexmarkConfig c = SmallConfig(50001, "bid");
  c.batch_size = 5000;
  LogicalPlan plan;
  auto options = std::make_shared<NexmarkSourceOptions>(c);
  EXPECT_NE(options->ToString().find("view=bid"), std::string::npos);
  const int id = plan.AddNode("nexmark_source", {}, options, 3);
  int64_t rows = 0;
  for (int i = 0; i < 3; ++i) {
    std::unique_ptr<SourceReader> reader;
    NEXMARK_ASSERT_OK_AND_ASSIGN(reader, registry.MakeSource(plan.node(id), i, 3));
    OperatorContext ctx;
    NEXMARK_ASSERT_OK(reader->Open(&ctx));
    while (true) {
      StreamElement el;
      PollResult r;
      NEXMARK_ASSERT_OK_AND_ASSIGN(r, reader->Poll(&el));
      if (r == PollResult::kEndOfInput) break;
      ASSERT_EQ(r, PollResult::kElement);
      ASSERT_TRUE(el.is_batch());
      ASSERT_TRUE(el.batch->schema()->Equals(*BidSchema()));
      rows += el.num_rows();
    }
    NEXMARK_ASSERT_OK(reader->Close());
  }
  // 50001 events hold 46 bids in each full group of 50, split-wise.
  EXPECT_GT(rows, 45000);
  EXPECT_LT(rows, 46100);

  NexmarkConfig bad = c;
  bad.first_event_rate = -1;
  const int bad_id =
      plan.AddNode("nexmark_source", {}, std::make_shared<NexmarkSourceOptions>(bad), 1);
  auto made = registry.MakeSource(plan.node(bad_id), 0, 1);
  ASSERT_FALSE(made.ok());
  EXPECT_NE(made.status().message().find("first_event_rate"), std::string::npos);
  EXPECT_NE(made.status().message().find("nexmark_source#"), std::string::npos);
}

TEST(NexmarkSource, RateLimitPacesWithoutSpinning) {
  NexmarkConfig c = SmallConfig(300, "combined");
  c.rate_limit = 2000;  // 300 events take ~150 ms
  std::unique_ptr<SourceReader> reader;
  NEXMARK_ASSERT_OK_AND_ASSIGN(reader, MakeNexmarkSourceReader(c, 0, 1));
  const auto start = std::chrono::steady_clock::now();
  int64_t rows = 0, not_ready = 0, polls = 0;
  while (true) {
    StreamElement el;
    PollResult r;
    NEXMARK_ASSERT_OK_AND_ASSIGN(r, reader->Poll(&el));
    ++polls;
    if (r == PollResult::kEndOfInput) break;
    if (r == PollResult::kNotReady) {
      ++not_ready;
      continue;
    }
    rows += el.num_rows();
  }
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(rows, 300);
  EXPECT_GT(not_ready, 0);
  EXPECT_GE(elapsed, 0.12);  // lower bound only: a loaded machine may be slower
  // Each Poll sleeps up to 2 ms while waiting, so ~150 ms needs no more than a few
  // hundred polls; a busy spin would make millions.
  EXPECT_LT(polls, 2000);
}

// --------------------------------------------------------------------------
// Throughput (prints only; no timed assertion)

double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

void ReportThroughput(const std::string& view, int64_t num_events) {
  NexmarkConfig c = SmallConfig(num_events, view);
  NexmarkGenerator gen(c, 0, 1);
  int64_t rows = 0;
  const auto start = std::chrono::steady_clock::now();
  const double cpu_start = ThreadCpuSeconds();
  while (true) {
    auto batch = gen.NextBatch();
    ASSERT_TRUE(batch.ok());
    if (*batch == nullptr) break;
    rows += (*batch)->num_rows();
  }
  const double s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double cpu = ThreadCpuSeconds() - cpu_start;
  std::printf(
      "[nexmark] view=%-8s %lld events (%lld rows): %.2f M events/s wall (%.3f s), "
      "%.2f M events/s thread CPU time (%.3f s)\n",
      view.c_str(), static_cast<long long>(num_events), static_cast<long long>(rows),
      static_cast<double>(num_events) / s / 1e6, s,
      static_cast<double>(num_events) / cpu / 1e6, cpu);
}

TEST(NexmarkGenerator, ThroughputReport) {
  ReportThroughput("bid", 10'000'000);
  ReportThroughput("combined", 10'000'000);
}

}  // namespace
}  // namespace sabot::nexmark
