// Kafka connector pieces that need no broker: the Java-compatible partitioner,
// option parsing and validation, metadata schema, client configuration errors.
// Tests against a real broker are in tests/python/test_kafka.py.
#include <gtest/gtest.h>

#include <string>

#include "sabot/connectors/kafka/kafka_client.h"
#include "sabot/connectors/kafka/kafka_sink.h"
#include "sabot/connectors/kafka/kafka_source.h"

namespace sabot::kafka {
namespace {

struct Murmur2Vector {
  std::string key;
  int32_t partition_of_6;
  int32_t partition_of_7;
};

// Expected partitions computed with Kafka 4.1.1's own Java code:
//   Utils.toPositive(Utils.murmur2(key.getBytes(UTF_8))) % n
// (org.apache.kafka.common.utils.Utils, run from the broker's jars). The murmur2
// values themselves: "" 275646681, "a" -1563381124, "21" -973932308,
// "foobar" -790332482, "key-0" 29210041.
TEST(KafkaPartitioner, MatchesJavaDefaultPartitioner) {
  const Murmur2Vector vectors[] = {
      {"", 3, 2},
      {"a", 4, 5},
      {"21", 0, 3},
      {"foobar", 0, 0},
      {"a-little-bit-long-string", 2, 1},
      {"a-little-bit-longer-string", 5, 0},
      {"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", 5, 3},
      {"\xc3\xa9t\xc3\xa9", 1, 4},  // "été" in UTF-8
      {"key-0", 1, 0},
      {"key-12345", 3, 0},
  };
  for (const auto& v : vectors) {
    EXPECT_EQ(JavaDefaultPartition(v.key.data(), v.key.size(), 6), v.partition_of_6)
        << "key '" << v.key << "'";
    EXPECT_EQ(JavaDefaultPartition(v.key.data(), v.key.size(), 7), v.partition_of_7)
        << "key '" << v.key << "'";
  }
}

TEST(KafkaPartitioner, MatchesJavaOnBinaryKeys) {
  // Utils.murmur2(new byte[]{0, -1, 1, -128, 2}) == -10895210 in Java.
  const unsigned char key[] = {0, 0xff, 1, 0x80, 2};
  const int64_t positive = static_cast<int64_t>(-10895210) & 0x7fffffff;
  for (int32_t n : {1, 3, 12, 100}) {
    EXPECT_EQ(JavaDefaultPartition(key, sizeof(key), n), positive % n);
  }
}

TEST(KafkaOptions, ParsesPoliciesAndStartPositions) {
  EXPECT_EQ(*ParseBadRecordPolicy("fail"), BadRecordPolicy::kFail);
  EXPECT_EQ(*ParseBadRecordPolicy("skip"), BadRecordPolicy::kSkip);
  EXPECT_EQ(*ParseBadRecordPolicy("dead_letter"), BadRecordPolicy::kDeadLetter);
  EXPECT_TRUE(ParseBadRecordPolicy("drop").status().IsInvalid());
  EXPECT_EQ(*ParseStartPosition("earliest"), StartPosition::kEarliest);
  EXPECT_EQ(*ParseStartPosition("latest"), StartPosition::kLatest);
  EXPECT_EQ(*ParseStartPosition("committed"), StartPosition::kCommitted);
  EXPECT_EQ(*ParseStartPosition("timestamp"), StartPosition::kTimestamp);
  EXPECT_TRUE(ParseStartPosition("beginning").status().IsInvalid());
}

TEST(KafkaOptions, SourceValidation) {
  KafkaSourceOptions o;
  o.bootstrap = "127.0.0.1:1";
  EXPECT_TRUE(o.Validate().IsInvalid());  // no topics
  o.topics = {"t"};
  EXPECT_TRUE(o.Validate().ok());
  o.topics = {"^t.*", "u"};
  EXPECT_TRUE(o.Validate().IsInvalid());  // a pattern must stand alone
  o.topics = {"t"};
  o.bad_records = BadRecordPolicy::kDeadLetter;
  EXPECT_TRUE(o.Validate().IsInvalid());  // no dead-letter topic
  o.dead_letter_topic = "dlq";
  EXPECT_TRUE(o.Validate().ok());
  o.metadata = {"key", "offset", "bogus"};
  auto st = o.Validate();
  EXPECT_TRUE(st.IsInvalid());
  EXPECT_NE(st.message().find("bogus"), std::string::npos);
  o.batch_size = 0;
  o.metadata = {};
  EXPECT_TRUE(o.Validate().IsInvalid());
}

TEST(KafkaOptions, MetadataSchema) {
  KafkaSourceOptions o;
  o.metadata = {"key", "topic", "partition", "offset", "timestamp", "headers"};
  o.metadata_prefix = "kafka_";
  auto schema = *MetadataSchema(o);
  ASSERT_EQ(schema->num_fields(), 6);
  EXPECT_EQ(schema->field(0)->name(), "kafka_key");
  EXPECT_TRUE(schema->field(0)->type()->Equals(arrow::binary()));
  EXPECT_TRUE(schema->field(1)->type()->Equals(arrow::utf8()));
  EXPECT_TRUE(schema->field(2)->type()->Equals(arrow::int32()));
  EXPECT_TRUE(schema->field(3)->type()->Equals(arrow::int64()));
  EXPECT_TRUE(
      schema->field(4)->type()->Equals(arrow::timestamp(arrow::TimeUnit::MILLI, "UTC")));
  EXPECT_EQ(schema->field(5)->type()->id(), arrow::Type::MAP);
}

TEST(KafkaOptions, SinkValidation) {
  KafkaSinkOptions o;
  EXPECT_TRUE(o.Validate().IsInvalid());
  o.bootstrap = "127.0.0.1:1";
  EXPECT_TRUE(o.Validate().IsInvalid());  // no topic
  o.topic = "out";
  EXPECT_TRUE(o.Validate().ok());
}

TEST(KafkaClient, BadPropertyIsInvalidAndNamed) {
  auto conf = MakeConf("127.0.0.1:1", {{"no.such.property", "1"}});
  ASSERT_FALSE(conf.ok());
  EXPECT_TRUE(conf.status().IsInvalid());
  EXPECT_NE(conf.status().message().find("no.such.property"), std::string::npos);
  EXPECT_TRUE(MakeConf("", {}).status().IsInvalid());
}

TEST(KafkaClient, ErrorsCarryRetryHint) {
  auto st = KafkaStatus(RD_KAFKA_RESP_ERR__TRANSPORT, "fetch");
  EXPECT_TRUE(st.IsIOError());
  EXPECT_NE(st.message().find("(retryable)"), std::string::npos);
  auto fatal = KafkaStatus(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, "fetch");
  EXPECT_EQ(fatal.message().find("(retryable)"), std::string::npos);
  EXPECT_TRUE(KafkaStatus(RD_KAFKA_RESP_ERR_NO_ERROR, "x").ok());
}

TEST(KafkaClient, UnreachableBrokerTimesOutWithStatus) {
  // Nothing listens on port 1: metadata fails with a Status, never a crash.
  auto conf = MakeConf("127.0.0.1:1", {});
  ASSERT_TRUE(conf.ok());
  auto client = MakeClient(RD_KAFKA_PRODUCER, std::move(*conf));
  ASSERT_TRUE(client.ok());
  auto count = TopicPartitionCount(client->get(), "t", /*timeout_ms=*/300);
  EXPECT_FALSE(count.ok());
}

}  // namespace
}  // namespace sabot::kafka
