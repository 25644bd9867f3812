package sabot.bench.flink.gen;

import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import org.apache.flink.api.common.functions.RichMapFunction;
import org.apache.flink.api.common.state.CheckpointListener;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.RestartStrategyOptions;
import org.apache.flink.runtime.state.FunctionInitializationContext;
import org.apache.flink.runtime.state.FunctionSnapshotContext;
import org.apache.flink.streaming.api.checkpoint.CheckpointedFunction;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.types.Row;
import org.apache.flink.util.CloseableIterator;

/**
 * Runs {@link NexmarkGeneratorSource#create} in a local Flink MiniCluster and writes the
 * rows it emits as JSON lines ({@link DumpEvents}'s format), in arrival order. With
 * {@link DumpEvents} this checks the source end to end (splits, readers, row type)
 * against Sabot's generator.
 *
 * <p>With {@code --fail-after K} it checks the source's checkpoint and restore path:
 * checkpoints every 20 ms, and each subtask's first attempt fails once it has passed K
 * rows and seen a checkpoint complete, so Flink restarts the job from that checkpoint
 * (the readers print "resumed at" with their split positions). The collect sink is
 * exactly-once under checkpoints, so the output must still be every event once.
 *
 * <pre>
 * java -cp ... sabot.bench.flink.gen.FlinkSourceDump --events N --parallelism P --out FILE
 *     [--fail-after K]
 * </pre>
 */
public final class FlinkSourceDump {
  private FlinkSourceDump() {}

  public static void main(String[] args) throws Exception {
    long events = 1000;
    int parallelism = 1;
    String out = null;
    long failAfter = 0;
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
        case "--fail-after":
          failAfter = Long.parseLong(args[++i]);
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
    Configuration conf = new Configuration();
    if (failAfter > 0) {
      conf.set(RestartStrategyOptions.RESTART_STRATEGY, "fixed-delay");
      conf.set(RestartStrategyOptions.RESTART_STRATEGY_FIXED_DELAY_ATTEMPTS, 3);
      conf.set(RestartStrategyOptions.RESTART_STRATEGY_FIXED_DELAY_DELAY, Duration.ofMillis(50));
    }
    StreamExecutionEnvironment env =
        StreamExecutionEnvironment.createLocalEnvironment(parallelism, conf);
    DataStream<Row> source = NexmarkGeneratorSource.create(env, events, parallelism);
    if (failAfter > 0) {
      env.enableCheckpointing(20);
      source =
          source.map(new FailOnceAfterCheckpoint(failAfter)).returns(source.getType())
              .setParallelism(parallelism);
    }
    long rows = 0;
    try (Writer w = Files.newBufferedWriter(Path.of(out), StandardCharsets.UTF_8);
        CloseableIterator<Row> it = source.executeAndCollect()) {
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

  /**
   * Passes rows through; on a subtask's first attempt, once it has passed {@code after}
   * rows and a checkpoint taken after at least {@code after} rows has completed, it
   * throws, so the job restarts from that checkpoint (a non-zero source position).
   * Past {@code after} rows it sleeps 1 ms per row so that a checkpoint can complete
   * between the source's polls.
   */
  static final class FailOnceAfterCheckpoint extends RichMapFunction<Row, Row>
      implements CheckpointListener, CheckpointedFunction {
    private static final long serialVersionUID = 1L;
    private final long after;
    private long seen;
    private long firstCheckpointPastAfter = -1;
    private boolean checkpointed;

    FailOnceAfterCheckpoint(long after) {
      this.after = after;
    }

    @Override
    public Row map(Row row) throws Exception {
      if (getRuntimeContext().getTaskInfo().getAttemptNumber() == 0 && ++seen > after) {
        if (checkpointed) throw new RuntimeException("FlinkSourceDump: injected failure");
        Thread.sleep(1);
      }
      return row;
    }

    @Override
    public void snapshotState(FunctionSnapshotContext context) {
      if (seen >= after && firstCheckpointPastAfter < 0) {
        firstCheckpointPastAfter = context.getCheckpointId();
      }
    }

    @Override
    public void initializeState(FunctionInitializationContext context) {}

    @Override
    public void notifyCheckpointComplete(long checkpointId) {
      if (firstCheckpointPastAfter >= 0 && checkpointId >= firstCheckpointPastAfter) {
        checkpointed = true;
      }
    }
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
