package sabot.bench.flink.gen;

import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;

/**
 * One split of the Nexmark event sequence: a line-by-line port of Sabot's generator
 * (cpp/src/sabot/connectors/nexmark/generator.cc), same id arithmetic, same PRNG
 * (wyrand seeded per event from splitmix64(seed) and the event id), same draw order
 * and field recipes, so the same config yields the same events as Sabot's
 * {@code nexmark_source} (checked by {@link DumpEvents} against {@code sabot.nexmark}).
 *
 * <p>Split {@code splitIndex} of {@code numSplits} owns the ids from
 * 1 + splitIndex * (maxEvents div numSplits) (the last split takes the remainder); every
 * split restarts at event number 1, so all splits share one event-time timeline
 * (/work/shared/NEXMARK.md 2.2).
 *
 * <p>Not thread-safe: one generator per source reader. The lookup tables are shared.
 */
public final class NexmarkGenerator {
  public static final int PERSON = 0;
  public static final int AUCTION = 1;
  public static final int BID = 2;

  private static final long FIRST_PERSON_ID = 1000;
  private static final long FIRST_AUCTION_ID = 1000;
  private static final long FIRST_CATEGORY_ID = 10;
  private static final long NUM_CATEGORIES = 5;
  static final int EXTRA_STRING_BYTES = 1 << 20;
  private static final int NUM_HOT_CHANNELS = 4;
  private static final int CHANNEL_CACHE_SIZE = 10000;

  private static final String[] FIRST_NAMES = {
    "Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter"
  };
  private static final String[] LAST_NAMES = {
    "Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris"
  };
  private static final String[] CITIES = {
    "Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland",
    "Bend", "Redmond", "Seattle", "Kent", "Cheyenne"
  };
  private static final String[] STATES = {"AZ", "CA", "ID", "OR", "WA", "WY"};
  private static final String[] HOT_CHANNELS = {"Google", "Facebook", "Baidu", "Apple"};
  private static final String URL_PREFIX = "https://www.nexmark.com/";
  private static final String URL_SUFFIX = "/item.htm?query=1";
  private static final String CHANNEL_ID_PARAM = "&channel_id=";

  // ---------------------------------------------------------------------------
  // Randomness (bit for bit the C++ Mix64 and Rng)

  static long mix64(long z) {
    z = (z ^ (z >>> 30)) * 0xbf58476d1ce4e5b9L;
    z = (z ^ (z >>> 27)) * 0x94d049bb133111ebL;
    return z ^ (z >>> 31);
  }

  /** Unsigned 64x64 -> high 64 bits (Math.unsignedMultiplyHigh is JDK 18+). */
  static long unsignedMultiplyHigh(long a, long b) {
    return Math.multiplyHigh(a, b) + ((a >> 63) & b) + ((b >> 63) & a);
  }

  /** wyrand, as Sabot's Rng. */
  static final class Rng {
    long state;

    Rng(long state) {
      this.state = state;
    }

    long next() {
      state += 0xa0761d6478bd642fL;
      final long a = state;
      final long b = state ^ 0xe7037ed1a0b428dbL;
      return unsignedMultiplyHigh(a, b) ^ (a * b);
    }

    /** U[0, n) for n >= 1 (multiply-shift). */
    long below(long n) {
      final long x = next();
      // n > 0, so the unsigned high product is multiplyHigh + (x < 0 ? n : 0).
      return Math.multiplyHigh(x, n) + ((x >> 63) & n);
    }

    /** Uniform double in [0, 1). */
    double unit() {
      return (next() >>> 11) * 0x1.0p-53;
    }
  }

  // ---------------------------------------------------------------------------
  // 10^(6u): Sabot's Pow10x6, with its table of glibc exp2(j / 256.0) taken bit for bit
  // (StrictMath.pow differs from glibc in the last bit for some j).

  private static final double POW_SCALE = 6.0 * 3.321928094887362347870319429489390175864831393;
  private static final double LN2 = 0.693147180559945309417232121458176568075500134360255;
  private static final long[] EXP2_TABLE_BITS = {
    0x3ff0000000000000L, 0x3ff00b1afa5abcbfL, 0x3ff0163da9fb3335L, 0x3ff02168143b0281L,
    0x3ff02c9a3e778061L, 0x3ff037d42e11bbccL, 0x3ff04315e86e7f85L, 0x3ff04e5f72f654b1L,
    0x3ff059b0d3158574L, 0x3ff0650a0e3c1f89L, 0x3ff0706b29ddf6deL, 0x3ff07bd42b72a836L,
    0x3ff0874518759bc8L, 0x3ff092bdf66607e0L, 0x3ff09e3ecac6f383L, 0x3ff0a9c79b1f3919L,
    0x3ff0b5586cf9890fL, 0x3ff0c0f145e46c85L, 0x3ff0cc922b7247f7L, 0x3ff0d83b23395decL,
    0x3ff0e3ec32d3d1a2L, 0x3ff0efa55fdfa9c5L, 0x3ff0fb66affed31bL, 0x3ff1073028d7233eL,
    0x3ff11301d0125b51L, 0x3ff11edbab5e2ab6L, 0x3ff12abdc06c31ccL, 0x3ff136a814f204abL,
    0x3ff1429aaea92de0L, 0x3ff14e95934f312eL, 0x3ff15a98c8a58e51L, 0x3ff166a45471c3c2L,
    0x3ff172b83c7d517bL, 0x3ff17ed48695bbc0L, 0x3ff18af9388c8deaL, 0x3ff1972658375d2fL,
    0x3ff1a35beb6fcb75L, 0x3ff1af99f8138a1cL, 0x3ff1bbe084045cd4L, 0x3ff1c82f95281c6bL,
    0x3ff1d4873168b9aaL, 0x3ff1e0e75eb44027L, 0x3ff1ed5022fcd91dL, 0x3ff1f9c18438ce4dL,
    0x3ff2063b88628cd6L, 0x3ff212be3578a819L, 0x3ff21f49917ddc96L, 0x3ff22bdda27912d1L,
    0x3ff2387a6e756238L, 0x3ff2451ffb82140aL, 0x3ff251ce4fb2a63fL, 0x3ff25e85711ece75L,
    0x3ff26b4565e27cddL, 0x3ff2780e341ddf29L, 0x3ff284dfe1f56381L, 0x3ff291ba7591bb70L,
    0x3ff29e9df51fdee1L, 0x3ff2ab8a66d10f13L, 0x3ff2b87fd0dad990L, 0x3ff2c57e39771b2fL,
    0x3ff2d285a6e4030bL, 0x3ff2df961f641589L, 0x3ff2ecafa93e2f56L, 0x3ff2f9d24abd886bL,
    0x3ff306fe0a31b715L, 0x3ff31432edeeb2fdL, 0x3ff32170fc4cd831L, 0x3ff32eb83ba8ea32L,
    0x3ff33c08b26416ffL, 0x3ff3496266e3fa2dL, 0x3ff356c55f929ff1L, 0x3ff36431a2de883bL,
    0x3ff371a7373aa9cbL, 0x3ff37f26231e754aL, 0x3ff38cae6d05d866L, 0x3ff39a401b7140efL,
    0x3ff3a7db34e59ff7L, 0x3ff3b57fbfec6cf4L, 0x3ff3c32dc313a8e5L, 0x3ff3d0e544ede173L,
    0x3ff3dea64c123422L, 0x3ff3ec70df1c5175L, 0x3ff3fa4504ac801cL, 0x3ff40822c367a024L,
    0x3ff4160a21f72e2aL, 0x3ff423fb2709468aL, 0x3ff431f5d950a897L, 0x3ff43ffa3f84b9d4L,
    0x3ff44e086061892dL, 0x3ff45c2042a7d232L, 0x3ff46a41ed1d0057L, 0x3ff4786d668b3237L,
    0x3ff486a2b5c13cd0L, 0x3ff494e1e192aed2L, 0x3ff4a32af0d7d3deL, 0x3ff4b17dea6db7d7L,
    0x3ff4bfdad5362a27L, 0x3ff4ce41b817c114L, 0x3ff4dcb299fddd0dL, 0x3ff4eb2d81d8abffL,
    0x3ff4f9b2769d2ca7L, 0x3ff508417f4531eeL, 0x3ff516daa2cf6642L, 0x3ff5257de83f4eefL,
    0x3ff5342b569d4f82L, 0x3ff542e2f4f6ad27L, 0x3ff551a4ca5d920fL, 0x3ff56070dde910d2L,
    0x3ff56f4736b527daL, 0x3ff57e27dbe2c4cfL, 0x3ff58d12d497c7fdL, 0x3ff59c0827ff07ccL,
    0x3ff5ab07dd485429L, 0x3ff5ba11fba87a03L, 0x3ff5c9268a5946b7L, 0x3ff5d84590998b93L,
    0x3ff5e76f15ad2148L, 0x3ff5f6a320dceb71L, 0x3ff605e1b976dc09L, 0x3ff6152ae6cdf6f4L,
    0x3ff6247eb03a5585L, 0x3ff633dd1d1929fdL, 0x3ff6434634ccc320L, 0x3ff652b9febc8fb7L,
    0x3ff6623882552225L, 0x3ff671c1c70833f6L, 0x3ff68155d44ca973L, 0x3ff690f4b19e9538L,
    0x3ff6a09e667f3bcdL, 0x3ff6b052fa75173eL, 0x3ff6c012750bdabfL, 0x3ff6cfdcddd47645L,
    0x3ff6dfb23c651a2fL, 0x3ff6ef9298593ae5L, 0x3ff6ff7df9519484L, 0x3ff70f7466f42e87L,
    0x3ff71f75e8ec5f74L, 0x3ff72f8286ead08aL, 0x3ff73f9a48a58174L, 0x3ff74fbd35d7cbfdL,
    0x3ff75feb564267c9L, 0x3ff77024b1ab6e09L, 0x3ff780694fde5d3fL, 0x3ff790b938ac1cf6L,
    0x3ff7a11473eb0187L, 0x3ff7b17b0976cfdbL, 0x3ff7c1ed0130c132L, 0x3ff7d26a62ff86f0L,
    0x3ff7e2f336cf4e62L, 0x3ff7f3878491c491L, 0x3ff80427543e1a12L, 0x3ff814d2add106d9L,
    0x3ff82589994cce13L, 0x3ff8364c1eb941f7L, 0x3ff8471a4623c7adL, 0x3ff857f4179f5b21L,
    0x3ff868d99b4492edL, 0x3ff879cad931a436L, 0x3ff88ac7d98a6699L, 0x3ff89bd0a478580fL,
    0x3ff8ace5422aa0dbL, 0x3ff8be05bad61778L, 0x3ff8cf3216b5448cL, 0x3ff8e06a5e0866d9L,
    0x3ff8f1ae99157736L, 0x3ff902fed0282c8aL, 0x3ff9145b0b91ffc6L, 0x3ff925c353aa2fe2L,
    0x3ff93737b0cdc5e5L, 0x3ff948b82b5f98e5L, 0x3ff95a44cbc8520fL, 0x3ff96bdd9a7670b3L,
    0x3ff97d829fde4e50L, 0x3ff98f33e47a22a2L, 0x3ff9a0f170ca07baL, 0x3ff9b2bb4d53fe0dL,
    0x3ff9c49182a3f090L, 0x3ff9d674194bb8d5L, 0x3ff9e86319e32323L, 0x3ff9fa5e8d07f29eL,
    0x3ffa0c667b5de565L, 0x3ffa1e7aed8eb8bbL, 0x3ffa309bec4a2d33L, 0x3ffa42c980460ad8L,
    0x3ffa5503b23e255dL, 0x3ffa674a8af46052L, 0x3ffa799e1330b358L, 0x3ffa8bfe53c12e59L,
    0x3ffa9e6b5579fdbfL, 0x3ffab0e521356ebaL, 0x3ffac36bbfd3f37aL, 0x3ffad5ff3a3c2774L,
    0x3ffae89f995ad3adL, 0x3ffafb4ce622f2ffL, 0x3ffb0e07298db666L, 0x3ffb20ce6c9a8952L,
    0x3ffb33a2b84f15fbL, 0x3ffb468415b749b1L, 0x3ffb59728de5593aL, 0x3ffb6c6e29f1c52aL,
    0x3ffb7f76f2fb5e47L, 0x3ffb928cf22749e4L, 0x3ffba5b030a1064aL, 0x3ffbb8e0b79a6f1fL,
    0x3ffbcc1e904bc1d2L, 0x3ffbdf69c3f3a207L, 0x3ffbf2c25bd71e09L, 0x3ffc06286141b33dL,
    0x3ffc199bdd85529cL, 0x3ffc2d1cd9fa652cL, 0x3ffc40ab5fffd07aL, 0x3ffc544778fafb22L,
    0x3ffc67f12e57d14bL, 0x3ffc7ba88988c933L, 0x3ffc8f6d9406e7b5L, 0x3ffca3405751c4dbL,
    0x3ffcb720dcef9069L, 0x3ffccb0f2e6d1675L, 0x3ffcdf0b555dc3faL, 0x3ffcf3155b5bab74L,
    0x3ffd072d4a07897cL, 0x3ffd1b532b08c968L, 0x3ffd2f87080d89f2L, 0x3ffd43c8eacaa1d6L,
    0x3ffd5818dcfba487L, 0x3ffd6c76e862e6d3L, 0x3ffd80e316c98398L, 0x3ffd955d71ff6075L,
    0x3ffda9e603db3285L, 0x3ffdbe7cd63a8315L, 0x3ffdd321f301b460L, 0x3ffde7d5641c0658L,
    0x3ffdfc97337b9b5fL, 0x3ffe11676b197d17L, 0x3ffe264614f5a129L, 0x3ffe3b333b16ee12L,
    0x3ffe502ee78b3ff6L, 0x3ffe653924676d76L, 0x3ffe7a51fbc74c83L, 0x3ffe8f7977cdb740L,
    0x3ffea4afa2a490daL, 0x3ffeb9f4867cca6eL, 0x3ffecf482d8e67f1L, 0x3ffee4aaa2188510L,
    0x3ffefa1bee615a27L, 0x3fff0f9c1cb6412aL, 0x3fff252b376bba97L, 0x3fff3ac948dd7274L,
    0x3fff50765b6e4540L, 0x3fff6632798844f8L, 0x3fff7bfdad9cbe14L, 0x3fff91d802243c89L,
    0x3fffa7c1819e90d8L, 0x3fffbdba3692d514L, 0x3fffd3c22b8f71f1L, 0x3fffe9d96b2a23d9L,
  };
  private static final double[] EXP2_TABLE = new double[256];

  static {
    for (int j = 0; j < 256; ++j) EXP2_TABLE[j] = Double.longBitsToDouble(EXP2_TABLE_BITS[j]);
  }

  static double pow10x6(double u) {
    final double x = u * POW_SCALE;
    final long fixed = (long) (x * 256.0);
    final long n = fixed >> 8;
    final double y = (x - fixed * (1.0 / 256.0)) * LN2;
    final double frac = 1.0 + y * (1.0 + y * (0.5 + y * (1.0 / 6)));
    final double twoN = Double.longBitsToDouble((n + 1023) << 52);
    return twoN * EXP2_TABLE[(int) (fixed & 255)] * frac;
  }

  // ---------------------------------------------------------------------------
  // Tables shared by every generator with the same seed

  static final class Tables {
    final byte[] extra = new byte[EXTRA_STRING_BYTES];
    /** 0..3 HOT_URLS, 4 + c CACHE[c]. */
    final String[] urls = new String[NUM_HOT_CHANNELS + CHANNEL_CACHE_SIZE];
    final String[] channels = new String[CHANNEL_CACHE_SIZE];
    final byte[][] cardGroups = new byte[10000][4];

    Tables(long seed) {
      Rng rng = new Rng(mix64(seed ^ 0x6e65786d61726b31L));
      for (int i = 0; i < extra.length; ++i) {
        final int v = (int) (rng.next() >> 32);
        extra[i] = (byte) ('a' + v % 26);
      }
      rng = new Rng(mix64(seed ^ 0x6e65786d61726b32L));
      final StringBuilder sb = new StringBuilder(96);
      for (int i = 0; i < NUM_HOT_CHANNELS; ++i) {
        sb.setLength(0);
        appendBaseUrl(rng, sb);
        urls[i] = sb.toString();
      }
      for (int c = 0; c < CHANNEL_CACHE_SIZE; ++c) {
        sb.setLength(0);
        appendBaseUrl(rng, sb);
        if (rng.below(10) > 0) {
          // Java Math.abs(Integer.reverse(c)): abs(INT_MIN) stays INT_MIN.
          sb.append(CHANNEL_ID_PARAM).append(Math.abs(Integer.reverse(c)));
        }
        urls[NUM_HOT_CHANNELS + c] = sb.toString();
        channels[c] = "channel-" + c;
      }
      for (int i = 0; i < 10000; ++i) {
        cardGroups[i][0] = (byte) ('0' + i / 1000);
        cardGroups[i][1] = (byte) ('0' + i / 100 % 10);
        cardGroups[i][2] = (byte) ('0' + i / 10 % 10);
        cardGroups[i][3] = (byte) ('0' + i % 10);
      }
    }
  }

  private static final Map<Long, Tables> TABLES = new HashMap<>();

  static synchronized Tables tables(long seed) {
    return TABLES.computeIfAbsent(seed, Tables::new);
  }

  /** str(max, sp) into dst[at..]: returns the length after trimming (sp == ' ' only). */
  static int randomString(Rng rng, int max, byte sp, byte[] dst, int at) {
    final int len = 3 + (int) rng.below(max - 3);
    for (int i = 0; i < len; ++i) {
      final long x = rng.next();
      final boolean isSp = (((x >>> 32) * 13) >>> 32) == 0;
      final byte letter = (byte) ('a' + (((x & 0xffffffffL) * 26) >>> 32));
      dst[at + i] = isSp ? sp : letter;
    }
    if (sp != ' ') return len;
    int begin = 0;
    int end = len;
    while (begin < end && dst[at + begin] == ' ') ++begin;
    while (end > begin && dst[at + end - 1] == ' ') --end;
    if (begin > 0) System.arraycopy(dst, at + begin, dst, at, end - begin);
    return end - begin;
  }

  private static void appendBaseUrl(Rng rng, StringBuilder out) {
    out.append(URL_PREFIX);
    final byte[] seg = new byte[8];
    for (int i = 0; i < 3; ++i) {
      if (i > 0) out.append('/');
      final int n = randomString(rng, 5, (byte) '_', seg, 0);
      out.append(new String(seg, 0, n, StandardCharsets.ISO_8859_1));
    }
    out.append(URL_SUFFIX);
  }

  // ---------------------------------------------------------------------------
  // One event, reused: only the fields of `kind` are meaningful.

  /** The fields of the last generated event. */
  public static final class Event {
    public int kind;
    public long dateTime;
    // person
    public long personId;
    public String name, emailAddress, creditCard, city, state;
    // auction
    public long auctionId, initialBid, reserve, expires, seller, category;
    public String itemName, description;
    // bid
    public long auction, bidder, price;
    public String channel, url;
    // every kind
    public String extra;
  }

  // ---------------------------------------------------------------------------

  private final NexmarkConfig config;
  private final Tables tables;
  private final long firstEventId;
  private final long count;
  private long k;
  private final long propP, propA, total, group;
  private final double delayUs;
  private final long horizonEvents;
  private final long seedMix, delaySeedMix;
  private final byte[] scratch = new byte[256];
  private final Rng rng = new Rng(0);

  public NexmarkGenerator(NexmarkConfig config, int splitIndex, int numSplits) {
    config.validate();
    if (numSplits < 1 || splitIndex < 0 || splitIndex >= numSplits) {
      throw new IllegalArgumentException(
          "nexmark: split " + splitIndex + " of " + numSplits + " is out of range");
    }
    this.config = config;
    this.tables = tables(config.seed);
    propP = config.personProportion;
    propA = config.auctionProportion;
    total = propP + propA + config.bidProportion;
    group = config.outOfOrderGroupSize;
    final long generators = config.numGenerators > 0 ? config.numGenerators : numSplits;
    delayUs = 1e6 / (double) config.firstEventRate * (double) generators;
    horizonEvents = propA > 0 ? config.numInFlightAuctions * total / propA : 0;
    seedMix = mix64(config.seed);
    delaySeedMix = mix64(config.seed ^ 0x64656c6179656421L);
    long maxEvents = config.numEvents;
    if (maxEvents == 0) {
      final long maxAvg =
          Math.max(
              Math.max(config.avgPersonByteSize, config.avgAuctionByteSize),
              Math.max(config.avgBidByteSize, 1));
      maxEvents = Long.MAX_VALUE / (total * maxAvg);
    }
    final long sub = maxEvents / numSplits;
    firstEventId = 1 + splitIndex * sub;
    count = splitIndex == numSplits - 1 ? maxEvents - sub * (numSplits - 1) : sub;
  }

  /** Events of the sequence covered so far. */
  public long eventsGenerated() {
    return k;
  }

  /** Events this split covers in total. */
  public long splitNumEvents() {
    return count;
  }

  public boolean exhausted() {
    return k >= count;
  }

  /** Positions the split after its first `events` events (restore). */
  public void skipTo(long events) {
    if (events < 0 || events > count) {
      throw new IllegalArgumentException(
          "nexmark: cannot position a split of " + count + " events at event " + events);
    }
    k = events;
  }

  private long adjust(long num) {
    if (group == 1) return num;
    return num / group * group + ((num % group) * 953) % group;
  }

  private long timeOf(long adj) {
    return config.baseTimeMs + ((long) ((double) adj * delayUs)) / 1000;
  }

  // Coordinates of the current event (Sabot's EventCoords).
  private long eAdj, eId, eEp, eOff;

  private long lastPerson() {
    return eEp * propP + Math.min(eOff, propP - 1);
  }

  private long lastAuction() {
    if (eOff < propP) return (eEp - 1) * propA + propA - 1;
    if (eOff >= propP + propA) return eEp * propA + propA - 1;
    return eEp * propA + eOff - propP;
  }

  private long nextPerson() {
    final long n = lastPerson() + 1;
    final long active = Math.min(n, config.numActivePeople);
    return n - active + rng.below(active + 10);
  }

  private long nextAuction() {
    final long m = lastAuction();
    final long lo = Math.max(m - config.numInFlightAuctions, 0);
    return lo + rng.below(m - lo + 11);
  }

  private long price() {
    return (long) (pow10x6(rng.unit()) * 100.0 + 0.5);
  }

  private String extra(long cur, long avg) {
    if (cur > avg) return "";
    final long d = avg - cur;
    final long delta = (long) Math.floor(0.2 * (double) d + 0.5);
    long len = d - delta;
    if (delta > 0) len += rng.below(2 * delta);
    if (len <= 0) return "";
    final long offset = rng.below(EXTRA_STRING_BYTES - len);
    return new String(tables.extra, (int) offset, (int) len, StandardCharsets.ISO_8859_1);
  }

  private String randomString(int max) {
    final int n = randomString(rng, max, (byte) ' ', scratch, 0);
    return new String(scratch, 0, n, StandardCharsets.ISO_8859_1);
  }

  /**
   * Generates the next event of the split into `e`; returns false (leaving `e` as it
   * was) once the split is exhausted.
   */
  public boolean next(Event e) {
    if (k >= count) return false;
    eAdj = adjust(1 + k);
    eId = firstEventId + eAdj;
    eEp = eId / total;
    eOff = eId - eEp * total;
    ++k;
    final int kind = eOff < propP ? PERSON : (eOff < propP + propA ? AUCTION : BID);
    long ts = timeOf(eAdj);
    if (config.probDelayedEvent > 0.0) {
      final Rng d = new Rng(mix64(delaySeedMix + eId * 0x9e3779b97f4a7c15L));
      if (d.unit() < config.probDelayedEvent) ts -= d.below(config.occasionalDelayMs + 1);
    }
    rng.state = mix64(seedMix + eId * 0x9e3779b97f4a7c15L);
    e.kind = kind;
    e.dateTime = ts;
    switch (kind) {
      case PERSON:
        person(e);
        break;
      case AUCTION:
        auction(e);
        break;
      default:
        bid(e);
        break;
    }
    return true;
  }

  private void person(Event e) {
    e.personId = FIRST_PERSON_ID + lastPerson();
    long cur = 8;
    final String first = FIRST_NAMES[(int) rng.below(FIRST_NAMES.length)];
    final String last = LAST_NAMES[(int) rng.below(LAST_NAMES.length)];
    e.name = first + " " + last;
    cur += e.name.length();

    final byte[] p = scratch;
    int n = randomString(rng, 7, (byte) ' ', p, 0);
    p[n++] = '@';
    n += randomString(rng, 5, (byte) ' ', p, n);
    p[n++] = '.';
    p[n++] = 'c';
    p[n++] = 'o';
    p[n++] = 'm';
    e.emailAddress = new String(p, 0, n, StandardCharsets.ISO_8859_1);
    cur += n;

    for (int g = 0; g < 4; ++g) {
      System.arraycopy(tables.cardGroups[(int) rng.below(10000)], 0, p, g * 5, 4);
      if (g < 3) p[g * 5 + 4] = ' ';
    }
    e.creditCard = new String(p, 0, 19, StandardCharsets.ISO_8859_1);
    cur += 19;

    e.city = CITIES[(int) rng.below(CITIES.length)];
    cur += e.city.length();
    e.state = STATES[(int) rng.below(STATES.length)];
    cur += 2;
    e.extra = extra(cur, config.avgPersonByteSize);
  }

  private void auction(Event e) {
    e.auctionId = FIRST_AUCTION_ID + lastAuction();
    final long seller;
    if (rng.below(config.hotSellersRatio) > 0) {
      seller = lastPerson() / 100 * 100;
    } else {
      seller = nextPerson();
    }
    e.seller = seller + FIRST_PERSON_ID;
    e.category = FIRST_CATEGORY_ID + rng.below(NUM_CATEGORIES);
    final long initialBid = price();
    e.initialBid = initialBid;
    final long horizon = timeOf(eAdj + horizonEvents) - timeOf(eAdj);
    e.expires = e.dateTime + 1 + rng.below(Math.max(horizon * 2, 1));
    e.itemName = randomString(20);
    e.description = randomString(100);
    e.reserve = initialBid + price();
    e.extra =
        extra(48 + e.itemName.length() + e.description.length(), config.avgAuctionByteSize);
  }

  private void bid(Event e) {
    final long auctionId;
    if (rng.below(config.hotAuctionRatio) > 0) {
      auctionId = lastAuction() / 100 * 100;
    } else {
      auctionId = nextAuction();
    }
    e.auction = auctionId + FIRST_AUCTION_ID;
    final long bidder;
    if (rng.below(config.hotBiddersRatio) > 0) {
      bidder = lastPerson() / 100 * 100 + 1;
    } else {
      bidder = nextPerson();
    }
    // Flink adds FIRST_PERSON_ID twice (NEXMARK.md 2.5).
    e.bidder = bidder + 2 * FIRST_PERSON_ID;
    e.price = price();
    if (rng.below(2) > 0) {
      final int i = (int) rng.below(NUM_HOT_CHANNELS);
      e.channel = HOT_CHANNELS[i];
      e.url = tables.urls[i];
    } else {
      final int ch = (int) rng.below(CHANNEL_CACHE_SIZE);
      e.channel = tables.channels[ch];
      e.url = tables.urls[NUM_HOT_CHANNELS + ch];
    }
    e.extra = extra(32, config.avgBidByteSize);
  }
}
