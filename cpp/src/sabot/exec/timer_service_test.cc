// Keyed event-time and processing-time timers, driven by the runtime.
#include <gtest/gtest.h>

#include "sabot/api/datastream.h"

namespace sabot {
namespace {

struct TimerLog : NodeOptions {
  std::shared_ptr<std::vector<std::string>> log =
      std::make_shared<std::vector<std::string>>();
  std::string ToString() const override { return "timer_log"; }
};

// Registers, per row, an event-time timer at ts + 10 keyed by the row's key, and
// one processing-time timer 20 ms from now.
class TimerOperator : public Operator {
 public:
  explicit TimerOperator(const TimerLog& o) : o_(o) {}
  arrow::Status ProcessBatch(int, const std::shared_ptr<arrow::RecordBatch>& b,
                             OperatorContext* ctx, Collector*) override {
    auto k = std::static_pointer_cast<arrow::StringArray>(b->GetColumnByName("k"));
    auto t = std::static_pointer_cast<arrow::Int64Array>(b->GetColumnByName("ts"));
    for (int64_t i = 0; i < b->num_rows(); ++i) {
      ctx->timers->RegisterEventTimeTimer(t->Value(i) + 10, k->GetString(i));
    }
    if (!processing_registered_) {
      ctx->timers->RegisterProcessingTimeTimer(WallClockMillis() + 20, "p");
      processing_registered_ = true;
    }
    return arrow::Status::OK();
  }
  arrow::Status OnTimer(const Timer& timer, OperatorContext*, Collector*) override {
    o_.log->push_back(
        (timer.domain == TimeDomain::kEventTime ? "event:" : "processing:") + timer.key +
        "@" + (timer.domain == TimeDomain::kEventTime ? std::to_string(timer.time) : ""));
    return arrow::Status::OK();
  }

 private:
  const TimerLog& o_;
  bool processing_registered_ = false;
};

TEST(TimerServiceTest, EventTimersFireInOrderOnWatermarkAndProcessingTimersByClock) {
  static bool registered = [] {
    ARROW_CHECK_OK(OperatorRegistry::Global()->AddOperator(
        "test_timers",
        [](const PlanNode& n, int, int) -> arrow::Result<std::unique_ptr<Operator>> {
          return std::make_unique<TimerOperator>(n.options_as<TimerLog>());
        }));
    return true;
  }();
  (void)registered;
  arrow::StringBuilder k;
  arrow::Int64Builder t;
  ASSERT_TRUE(k.AppendValues({"a", "b", "a"}).ok());
  ASSERT_TRUE(
      t.AppendValues({100, 50, 100}).ok());  // (a, 110) registered twice: one timer
  auto schema = arrow::schema(
      {arrow::field("k", arrow::utf8()), arrow::field("ts", arrow::int64())});
  auto batch = arrow::RecordBatch::Make(
      schema, 3, {k.Finish().ValueOrDie(), t.Finish().ValueOrDie()});
  ASSERT_TRUE(k.AppendValues({"c"}).ok());
  ASSERT_TRUE(t.AppendValues({200}).ok());
  auto later = arrow::RecordBatch::Make(
      schema, 1, {k.Finish().ValueOrDie(), t.Finish().ValueOrDie()});
  // A slow second batch keeps the job alive past the processing-time timer.
  int calls = 0;
  JobOptions options;
  options.parallelism = 1;
  auto env = StreamEnvironment::Make(options);
  auto log = std::make_shared<TimerLog>();
  WatermarkOptions wm;
  wm.time_column = "ts";
  env->FromBatches(schema, {batch, later}, 1)
      .Map(
          [&calls](const std::shared_ptr<arrow::RecordBatch>& b)
              -> arrow::Result<std::shared_ptr<arrow::RecordBatch>> {
            if (calls++ == 1) std::this_thread::sleep_for(std::chrono::milliseconds(60));
            return b;
          },
          "pace")
      .AssignWatermarks(wm)
      .Apply("test_timers", log);
  ASSERT_TRUE(env->Execute().ok());
  // Event timers fire in time order (50+10 before 100+10) when the watermark
  // passes them (at the latest, the end-of-input watermark).
  std::vector<std::string> event;
  bool processing = false;
  for (const auto& e : *log->log) {
    if (e.rfind("event:", 0) == 0) event.push_back(e);
    processing |= e == "processing:p@";
  }
  EXPECT_EQ(event,
            (std::vector<std::string>{"event:b@60", "event:a@110", "event:c@210"}));
  EXPECT_TRUE(processing);
}

}  // namespace
}  // namespace sabot
