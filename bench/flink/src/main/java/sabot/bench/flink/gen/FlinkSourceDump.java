package sabot.bench.flink.gen;

import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.types.Row;
import org.apache.flink.util.CloseableIterator;

/**
 * Runs {@link NexmarkGeneratorSource#create} in a local Flink MiniCluster and writes the
 * rows it emits as JSON lines ({@link DumpEvents}'s format), in arrival order. With
 * {@link DumpEvents} this checks the source end to end (splits, readers, row type)
 * against Sabot's generator.
 *
 * <pre>
 * java -cp ... sabot.bench.flink.gen.FlinkSourceDump --events N --parallelism P --out FILE
 * </pre>
 */
public final class FlinkSourceDump {
  private FlinkSourceDump() {}

  public static void main(String[] args) throws Exception {
    long events = 1000;
    int parallelism = 1;
    String out = null;
    for (int i = 0; i < args.length; ++i) {
      switch (args[i]) {
        case "--events":
          events = Long.parseLong(args[++i]);
          break;
        case "--parallelism":
          parallelism = Integer.parseInt(args[++i]);
          break;
        case "--out":
          out = args[++i];
          break;
        default:
          System.err.println("FlinkSourceDump: unknown argument " + args[i]);
          System.exit(2);
      }
    }
    if (out == null) {
      System.err.println("FlinkSourceDump: --out FILE is required");
      System.exit(2);
    }
    StreamExecutionEnvironment env = StreamExecutionEnvironment.createLocalEnvironment(parallelism);
    long rows = 0;
    try (Writer w = Files.newBufferedWriter(Path.of(out), StandardCharsets.UTF_8);
        CloseableIterator<Row> it =
            NexmarkGeneratorSource.create(env, events, parallelism).executeAndCollect()) {
      NexmarkGenerator.Event e = new NexmarkGenerator.Event();
      StringBuilder sb = new StringBuilder(1024);
      while (it.hasNext()) {
        toEvent(it.next(), e);
        sb.setLength(0);
        DumpEvents.toJson(e, sb);
        sb.append('\n');
        w.write(sb.toString());
        ++rows;
      }
    }
    System.out.println("{\"rows\": " + rows + ", \"parallelism\": " + parallelism + "}");
    System.exit(0);
  }

  private static long ms(Object ts) {
    return ((LocalDateTime) ts).toInstant(ZoneOffset.UTC).toEpochMilli();
  }

  /** The inverse of NexmarkGeneratorSource.toRow. */
  static void toEvent(Row r, NexmarkGenerator.Event e) {
    e.kind = (Integer) r.getField(0);
    Row p = (Row) r.getField(1);
    Row a = (Row) r.getField(2);
    Row b = (Row) r.getField(3);
    if (e.kind == NexmarkGenerator.PERSON) {
      e.personId = (Long) p.getField(0);
      e.name = (String) p.getField(1);
      e.emailAddress = (String) p.getField(2);
      e.creditCard = (String) p.getField(3);
      e.city = (String) p.getField(4);
      e.state = (String) p.getField(5);
      e.dateTime = ms(p.getField(6));
      e.extra = (String) p.getField(7);
    } else if (e.kind == NexmarkGenerator.AUCTION) {
      e.auctionId = (Long) a.getField(0);
      e.itemName = (String) a.getField(1);
      e.description = (String) a.getField(2);
      e.initialBid = (Long) a.getField(3);
      e.reserve = (Long) a.getField(4);
      e.dateTime = ms(a.getField(5));
      e.expires = ms(a.getField(6));
      e.seller = (Long) a.getField(7);
      e.category = (Long) a.getField(8);
      e.extra = (String) a.getField(9);
    } else {
      e.auction = (Long) b.getField(0);
      e.bidder = (Long) b.getField(1);
      e.price = (Long) b.getField(2);
      e.channel = (String) b.getField(3);
      e.url = (String) b.getField(4);
      e.dateTime = ms(b.getField(5));
      e.extra = (String) b.getField(6);
    }
  }
}
