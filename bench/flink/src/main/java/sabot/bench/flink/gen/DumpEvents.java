package sabot.bench.flink.gen;

import java.io.BufferedWriter;
import java.io.IOException;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;

/**
 * Writes the events of {@link NexmarkGenerator} as JSON lines in the layout of Flink's
 * Nexmark {@code datagen} table (event_type, person, auction, bid, dateTime; timestamps as
 * "YYYY-MM-DD HH:MM:SS.mmm" UTC), split after split. bench/nexmark_vs_flink.py
 * --check-generator compares this with Sabot's generator.
 *
 * <pre>
 * java -cp ... sabot.bench.flink.gen.DumpEvents --events N [--splits P] [--out FILE]
 * </pre>
 */
public final class DumpEvents {
  private static final DateTimeFormatter TS =
      DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss.SSS").withZone(ZoneOffset.UTC);

  private DumpEvents() {}

  public static void main(String[] args) throws IOException {
    long events = 1000;
    int splits = 1;
    String out = null;
    for (int i = 0; i < args.length; ++i) {
      switch (args[i]) {
        case "--events":
          events = Long.parseLong(args[++i]);
          break;
        case "--splits":
          splits = Integer.parseInt(args[++i]);
          break;
        case "--out":
          out = args[++i];
          break;
        default:
          System.err.println("DumpEvents: unknown argument " + args[i]);
          System.exit(2);
      }
    }
    NexmarkConfig config = new NexmarkConfig();
    config.numEvents = events;
    try (Writer w =
        out == null
            ? new BufferedWriter(new OutputStreamWriter(System.out, StandardCharsets.UTF_8))
            : Files.newBufferedWriter(Path.of(out), StandardCharsets.UTF_8)) {
      StringBuilder sb = new StringBuilder(1024);
      NexmarkGenerator.Event e = new NexmarkGenerator.Event();
      for (int s = 0; s < splits; ++s) {
        NexmarkGenerator gen = new NexmarkGenerator(config, s, splits);
        while (gen.next(e)) {
          sb.setLength(0);
          toJson(e, sb);
          sb.append('\n');
          w.write(sb.toString());
        }
      }
    }
  }

  static String ts(long ms) {
    return TS.format(Instant.ofEpochMilli(ms));
  }

  static void str(StringBuilder sb, String s) {
    sb.append('"');
    for (int i = 0; i < s.length(); ++i) {
      char c = s.charAt(i);
      if (c == '"' || c == '\\') {
        sb.append('\\').append(c);
      } else if (c < 0x20) {
        sb.append(String.format("\\u%04x", (int) c));
      } else {
        sb.append(c);
      }
    }
    sb.append('"');
  }

  static void toJson(NexmarkGenerator.Event e, StringBuilder sb) {
    sb.append("{\"event_type\": ").append(e.kind).append(", \"person\": ");
    if (e.kind == NexmarkGenerator.PERSON) {
      sb.append("{\"id\": ").append(e.personId).append(", \"name\": ");
      str(sb, e.name);
      sb.append(", \"emailAddress\": ");
      str(sb, e.emailAddress);
      sb.append(", \"creditCard\": ");
      str(sb, e.creditCard);
      sb.append(", \"city\": ");
      str(sb, e.city);
      sb.append(", \"state\": ");
      str(sb, e.state);
      sb.append(", \"dateTime\": ");
      str(sb, ts(e.dateTime));
      sb.append(", \"extra\": ");
      str(sb, e.extra);
      sb.append('}');
    } else {
      sb.append("null");
    }
    sb.append(", \"auction\": ");
    if (e.kind == NexmarkGenerator.AUCTION) {
      sb.append("{\"id\": ").append(e.auctionId).append(", \"itemName\": ");
      str(sb, e.itemName);
      sb.append(", \"description\": ");
      str(sb, e.description);
      sb.append(", \"initialBid\": ").append(e.initialBid);
      sb.append(", \"reserve\": ").append(e.reserve);
      sb.append(", \"dateTime\": ");
      str(sb, ts(e.dateTime));
      sb.append(", \"expires\": ");
      str(sb, ts(e.expires));
      sb.append(", \"seller\": ").append(e.seller);
      sb.append(", \"category\": ").append(e.category);
      sb.append(", \"extra\": ");
      str(sb, e.extra);
      sb.append('}');
    } else {
      sb.append("null");
    }
    sb.append(", \"bid\": ");
    if (e.kind == NexmarkGenerator.BID) {
      sb.append("{\"auction\": ").append(e.auction);
      sb.append(", \"bidder\": ").append(e.bidder);
      sb.append(", \"price\": ").append(e.price);
      sb.append(", \"channel\": ");
      str(sb, e.channel);
      sb.append(", \"url\": ");
      str(sb, e.url);
      sb.append(", \"dateTime\": ");
      str(sb, ts(e.dateTime));
      sb.append(", \"extra\": ");
      str(sb, e.extra);
      sb.append('}');
    } else {
      sb.append("null");
    }
    sb.append(", \"dateTime\": ");
    str(sb, ts(e.dateTime));
    sb.append('}');
  }
}
