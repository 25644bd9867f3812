package sabot.bench.flink.gen;

import java.io.Serializable;

/**
 * Generator settings: the fields and defaults of Sabot's {@code NexmarkConfig}
 * (cpp/src/sabot/connectors/nexmark/generator.h) that change the event sequence.
 * Same config, same events as Sabot's generator.
 */
public final class NexmarkConfig implements Serializable {
  private static final long serialVersionUID = 1L;

  /** Events over all splits; 0 = unbounded (Long.MAX_VALUE div (T * max avg size)). */
  public long numEvents = 0;
  /** Events per second of event time (all splits together when numGenerators = 0). */
  public long firstEventRate = 10000;
  /** 0 = the number of splits (Flink substitutes parallelism.default). */
  public long numGenerators = 0;
  /** Event time of event number 0: 2026-01-01T00:00:00Z, as Sabot. */
  public long baseTimeMs = 1767225600000L;
  /** Seeds the per-event PRNG and the shared tables. */
  public long seed = 42;
  public int personProportion = 1, auctionProportion = 3, bidProportion = 46;
  public int hotAuctionRatio = 2, hotSellersRatio = 4, hotBiddersRatio = 4;
  public long numInFlightAuctions = 100, numActivePeople = 1000;
  public long avgPersonByteSize = 200, avgAuctionByteSize = 500, avgBidByteSize = 100;
  public long outOfOrderGroupSize = 1;
  public long occasionalDelayMs = 0;
  public double probDelayedEvent = 0.0;

  /** Throws IllegalArgumentException naming the offending field. */
  public void validate() {
    check(numEvents >= 0, "numEvents", numEvents, "must be >= 0, 0 = unbounded");
    check(firstEventRate > 0, "firstEventRate", firstEventRate, "must be > 0");
    check(numGenerators >= 0, "numGenerators", numGenerators, "must be >= 0");
    check(personProportion >= 0, "personProportion", personProportion, "must be >= 0");
    check(auctionProportion >= 0, "auctionProportion", auctionProportion, "must be >= 0");
    check(bidProportion >= 0, "bidProportion", bidProportion, "must be >= 0");
    long total = (long) personProportion + auctionProportion + bidProportion;
    check(total > 0 && total <= Integer.MAX_VALUE, "proportions", total, "sum must be in [1, 2^31)");
    check(hotAuctionRatio >= 1, "hotAuctionRatio", hotAuctionRatio, "must be >= 1");
    check(hotSellersRatio >= 1, "hotSellersRatio", hotSellersRatio, "must be >= 1");
    check(hotBiddersRatio >= 1, "hotBiddersRatio", hotBiddersRatio, "must be >= 1");
    check(numInFlightAuctions >= 1, "numInFlightAuctions", numInFlightAuctions, "must be >= 1");
    check(numActivePeople >= 1, "numActivePeople", numActivePeople, "must be >= 1");
    for (long v : new long[] {avgPersonByteSize, avgAuctionByteSize, avgBidByteSize}) {
      check(v >= 0 && v <= 800000, "avg*ByteSize", v, "must be in [0, 800000]");
    }
    check(outOfOrderGroupSize >= 1, "outOfOrderGroupSize", outOfOrderGroupSize, "must be >= 1");
    check(occasionalDelayMs >= 0, "occasionalDelayMs", occasionalDelayMs, "must be >= 0");
    check(probDelayedEvent >= 0.0 && probDelayedEvent <= 1.0, "probDelayedEvent",
        probDelayedEvent, "must be in [0, 1]");
  }

  private static void check(boolean ok, String field, Object value, String rule) {
    if (!ok) {
      throw new IllegalArgumentException(
          "nexmark config: " + field + " " + rule + " (got " + value + ")");
    }
  }
}
