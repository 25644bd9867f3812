package sabot.bench.flink;

import java.io.BufferedWriter;
import java.io.IOException;
import java.io.InputStream;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.CoreOptions;
import org.apache.flink.configuration.RestOptions;
import org.apache.flink.runtime.minicluster.MiniCluster;
import org.apache.flink.runtime.minicluster.MiniClusterConfiguration;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.table.api.DataTypes;
import org.apache.flink.table.api.EnvironmentSettings;
import org.apache.flink.table.api.Schema;
import org.apache.flink.table.api.Table;
import org.apache.flink.table.api.TableDescriptor;
import org.apache.flink.table.api.TableResult;
import org.apache.flink.table.api.bridge.java.StreamTableEnvironment;
import org.apache.flink.table.catalog.ResolvedSchema;
import org.apache.flink.table.types.DataType;
import org.apache.flink.table.types.logical.LocalZonedTimestampType;
import org.apache.flink.table.types.logical.LogicalType;
import org.apache.flink.table.types.logical.TimestampType;
import org.apache.flink.types.Row;
import org.apache.flink.types.RowKind;
import org.apache.flink.util.CloseableIterator;

/**
 * Runs Nexmark queries, written as Flink SQL (resources nexmark/qN.sql), on Apache Flink in
 * a MiniCluster inside this JVM, over the suite's {@code datagen}-shaped table and its
 * {@code person}/{@code auction}/{@code bid} views.
 *
 * <pre>
 * java -cp sabot-flink-bench.jar sabot.bench.flink.NexmarkRunner
 *     --query q5[,q7,...|all] --source file:/path/events.jsonl | generator:EVENTS
 *     [--parallelism P] [--sink collect:/path/out.jsonl | blackhole] [--warmup 0|1]
 *     [--side-input /path/side_input.csv]
 * </pre>
 *
 * <p>Prints one JSON line per query (query, events, seconds, events_per_s, parallelism,
 * peak_rss_mb, rows). {@code collect:PATH} writes the final result (RowKind applied: +I/+U
 * add a row, -U/-D remove one) as JSON lines; with several queries PATH must contain
 * {@code {q}}, replaced by the query name.
 */
public final class NexmarkRunner {
  static final String GENERATOR_CLASS = "sabot.bench.flink.gen.NexmarkGeneratorSource";

  /** Every query this runner has SQL for, in numeric order (q6 is left out, as the suite does). */
  static final String[] ALL_QUERIES = {
    "q0", "q1", "q2", "q3", "q4", "q5", "q7", "q8", "q9", "q10", "q11", "q12", "q13", "q14",
    "q15", "q16", "q17", "q18", "q19", "q20", "q21", "q22"
  };

  private NexmarkRunner() {}

  static final class Options {
    List<String> queries = new ArrayList<>();
    String source;
    int parallelism = 1;
    String sink = "blackhole";
    int warmup = 0;
    String sideInput;
  }

  static Options parse(String[] args) {
    Options o = new Options();
    for (int i = 0; i < args.length; i++) {
      String a = args[i];
      if (i + 1 >= args.length) {
        throw new IllegalArgumentException("option " + a + " needs a value");
      }
      String v = args[++i];
      switch (a) {
        case "--query":
          for (String q : v.split(",")) {
            if (q.equals("all")) {
              o.queries.addAll(List.of(ALL_QUERIES));
            } else if (!q.isBlank()) {
              o.queries.add(q.trim());
            }
          }
          break;
        case "--source":
          o.source = v;
          break;
        case "--parallelism":
          o.parallelism = Integer.parseInt(v);
          break;
        case "--sink":
          o.sink = v;
          break;
        case "--warmup":
          o.warmup = Integer.parseInt(v);
          break;
        case "--side-input":
          o.sideInput = v;
          break;
        default:
          throw new IllegalArgumentException("unknown option " + a);
      }
    }
    if (o.queries.isEmpty() || o.source == null) {
      throw new IllegalArgumentException(
          "usage: NexmarkRunner --query qN[,qM...|all] --source file:PATH|generator:EVENTS"
              + " [--parallelism P] [--sink collect:PATH|blackhole] [--warmup 0|1]"
              + " [--side-input PATH]");
    }
    if (o.sink.startsWith("collect:") && o.queries.size() > 1 && !o.sink.contains("{q}")) {
      throw new IllegalArgumentException(
          "--sink collect:PATH with several queries: PATH must contain {q}");
    }
    return o;
  }

  public static void main(String[] args) throws Exception {
    Options o;
    try {
      o = parse(args);
    } catch (IllegalArgumentException e) {
      System.err.println("NexmarkRunner: " + e.getMessage());
      System.exit(2);
      return;
    }
    for (String q : o.queries) {
      if (NexmarkRunner.class.getResource("/nexmark/" + q + ".sql") == null) {
        System.err.println(
            "NexmarkRunner: no SQL for query " + q + " (known: " + String.join(",", ALL_QUERIES)
                + ")");
        System.exit(2);
      }
    }

    // One MiniCluster for all queries (a local environment would start and stop one per
    // job); jobs reach it through its REST endpoint on a free loopback port.
    Configuration conf = new Configuration();
    conf.set(CoreOptions.DEFAULT_PARALLELISM, o.parallelism);
    conf.set(RestOptions.BIND_ADDRESS, "127.0.0.1");
    conf.set(RestOptions.ADDRESS, "127.0.0.1");
    conf.set(RestOptions.BIND_PORT, "0");
    MiniCluster cluster =
        new MiniCluster(
            new MiniClusterConfiguration.Builder()
                .setConfiguration(conf)
                .setNumTaskManagers(1)
                .setNumSlotsPerTaskManager(o.parallelism)
                .build());
    cluster.start();
    URI rest = cluster.getRestAddress().get();
    Configuration client = new Configuration();
    client.set(CoreOptions.DEFAULT_PARALLELISM, o.parallelism);
    StreamExecutionEnvironment env =
        StreamExecutionEnvironment.createRemoteEnvironment(rest.getHost(), rest.getPort(), client);
    env.setParallelism(o.parallelism);
    StreamTableEnvironment tEnv =
        StreamTableEnvironment.create(env, EnvironmentSettings.inStreamingMode());

    long events = registerSource(env, tEnv, o);
    for (String stmt : statements(resource("/nexmark/ddl_views.sql"), Map.of())) {
      tEnv.executeSql(stmt);
    }
    String sideInput = o.sideInput != null ? o.sideInput : writeSideInput().toString();

    int failed = 0;
    for (String q : o.queries) {
      try {
        runQuery(tEnv, o, q, events, sideInput);
      } catch (Exception e) {
        // One query's failure is reported and the others still run (one JVM runs them all).
        failed++;
        System.err.println("NexmarkRunner: " + q + " failed:");
        e.printStackTrace();
        String msg = String.valueOf(e.getMessage()).split("\n")[0];
        StringBuilder line = new StringBuilder("{\"engine\": \"flink\", \"query\": ");
        JsonRows.string(line, q);
        line.append(", \"error\": ");
        JsonRows.string(line, e.getClass().getSimpleName() + ": " + msg);
        line.append('}');
        System.out.println(line);
        System.out.flush();
      }
    }
    cluster.close();
    System.exit(failed == 0 ? 0 : 1); // leftover non-daemon threads would keep the JVM up
  }

  static void runQuery(
      StreamTableEnvironment tEnv, Options o, String q, long events, String sideInput)
      throws Exception {
    String text = resource("/nexmark/" + q + ".sql");
    List<String> stmts = statements(text, Map.of("SIDE_INPUT", sideInput));
    for (int i = 0; i + 1 < stmts.size(); i++) {
      tEnv.executeSql(stmts.get(i)); // CREATE TEMPORARY VIEW / TABLE IF NOT EXISTS
    }
    String select = stmts.get(stmts.size() - 1);
    for (int w = 0; w < o.warmup; w++) {
      runBlackhole(tEnv, select, q);
    }
    long t0 = System.nanoTime();
    long rows;
    if (o.sink.startsWith("collect:")) {
      Path out = Paths.get(o.sink.substring("collect:".length()).replace("{q}", q));
      rows = runCollect(tEnv, select, upsertKey(text), out, q);
    } else if (o.sink.equals("blackhole")) {
      runBlackhole(tEnv, select, q);
      rows = -1;
    } else {
      throw new IllegalArgumentException("--sink " + o.sink + ": use collect:PATH or blackhole");
    }
    double seconds = (System.nanoTime() - t0) / 1e9;
    System.out.println(
        String.format(
            Locale.ROOT,
            "{\"engine\": \"flink\", \"query\": \"%s\", \"events\": %d, \"seconds\": %.3f,"
                + " \"events_per_s\": %.1f, \"parallelism\": %d, \"peak_rss_mb\": %.1f,"
                + " \"rows\": %d, \"source\": \"%s\"}",
            q,
            events,
            seconds,
            events / seconds,
            o.parallelism,
            peakRssMb(),
            rows,
            o.source.startsWith("file:") ? "file" : "generator"));
    System.out.flush();
  }

  /** Registers table {@code datagen}; returns the number of events it holds. */
  static long registerSource(StreamExecutionEnvironment env, StreamTableEnvironment tEnv, Options o)
      throws IOException {
    if (o.source.startsWith("file:")) {
      Path path = Paths.get(o.source.substring("file:".length())).toAbsolutePath();
      if (!Files.isRegularFile(path)) {
        throw new IOException("event file " + path + " does not exist");
      }
      for (String stmt :
          statements(resource("/nexmark/ddl_file.sql"), Map.of("EVENTS_FILE", path.toString()))) {
        tEnv.executeSql(stmt);
      }
      return countLines(path);
    }
    if (o.source.startsWith("generator:")) {
      long events = Long.parseLong(o.source.substring("generator:".length()));
      DataStream<Row> stream = generatorStream(env, events, o.parallelism);
      Table table =
          tEnv.fromDataStream(
              stream,
              Schema.newBuilder()
                  .columnByExpression(
                      "dateTime",
                      "CASE WHEN event_type = 0 THEN person.`dateTime`"
                          + " WHEN event_type = 1 THEN auction.`dateTime`"
                          + " ELSE bid.`dateTime` END")
                  .watermark("dateTime", "`dateTime` - INTERVAL '4' SECOND")
                  .build());
      tEnv.createTemporaryView("datagen", table);
      return events;
    }
    throw new IllegalArgumentException(
        "--source " + o.source + ": use file:PATH or generator:EVENTS");
  }

  @SuppressWarnings("unchecked")
  static DataStream<Row> generatorStream(StreamExecutionEnvironment env, long events, int p) {
    Class<?> cls;
    try {
      cls = Class.forName(GENERATOR_CLASS);
    } catch (ClassNotFoundException e) {
      throw new IllegalStateException(
          "--source generator: needs class " + GENERATOR_CLASS
              + " (bench/flink/src/main/java/sabot/bench/flink/gen/), which this jar lacks;"
              + " use --source file:PATH",
          e);
    }
    try {
      Method create =
          cls.getMethod("create", StreamExecutionEnvironment.class, long.class, int.class);
      return (DataStream<Row>) create.invoke(null, env, events, p);
    } catch (NoSuchMethodException | IllegalAccessException e) {
      throw new IllegalStateException(
          GENERATOR_CLASS + " has no public static create(StreamExecutionEnvironment, long, int)",
          e);
    } catch (InvocationTargetException e) {
      throw new IllegalStateException(GENERATOR_CLASS + ".create failed", e.getCause());
    }
  }

  /** Runs {@code select} into a blackhole sink and waits for the job to end. */
  static void runBlackhole(StreamTableEnvironment tEnv, String select, String q) throws Exception {
    Table t = tEnv.sqlQuery(select);
    ResolvedSchema rs = t.getResolvedSchema();
    Schema.Builder sb = Schema.newBuilder();
    for (int i = 0; i < rs.getColumnCount(); i++) {
      sb.column(rs.getColumnNames().get(i), plainType(rs.getColumnDataTypes().get(i)));
    }
    TableResult r =
        t.executeInsert(TableDescriptor.forConnector("blackhole").schema(sb.build()).build());
    r.await();
  }

  /** A time attribute's type without its ROWTIME / PROCTIME marker (sinks take plain types). */
  static DataType plainType(DataType type) {
    LogicalType lt = type.getLogicalType();
    if (lt instanceof TimestampType ts) {
      return DataTypes.TIMESTAMP(ts.getPrecision());
    }
    if (lt instanceof LocalZonedTimestampType ts) {
      return DataTypes.TIMESTAMP_LTZ(ts.getPrecision());
    }
    return type;
  }

  /**
   * Runs {@code select}, applies its changelog and writes the final multiset of rows to
   * {@code out} as JSON lines. Returns the row count.
   *
   * <p>Without an upsert key, +I/+U add a row and -U/-D remove an equal one. Flink may leave
   * out -U (it emits upserts when nothing downstream needs the retraction, as for a top-1
   * rank), so a query whose result is keyed declares {@code -- upsert-key: a, b} in its SQL
   * file; then +I/+U set the row of its key and -U/-D remove it. A changelog with more +U
   * than -U and no declared key is an error.
   */
  static long runCollect(
      StreamTableEnvironment tEnv, String select, List<String> upsertKey, Path out, String q)
      throws Exception {
    TableResult result = tEnv.executeSql(select);
    List<String> names = result.getResolvedSchema().getColumnNames();
    int[] keyIdx = new int[upsertKey.size()];
    for (int i = 0; i < keyIdx.length; i++) {
      keyIdx[i] = names.indexOf(upsertKey.get(i));
      if (keyIdx[i] < 0) {
        throw new IllegalArgumentException(
            q + ": upsert-key column " + upsertKey.get(i) + " is not in " + names);
      }
    }
    Map<String, Long> counts = new LinkedHashMap<>(); // no key: row -> multiplicity
    Map<String, String> byKey = new LinkedHashMap<>(); // key: key -> row
    long[] kinds = new long[RowKind.values().length];
    try (CloseableIterator<Row> it = result.collect()) {
      while (it.hasNext()) {
        Row row = it.next();
        String line = JsonRows.toJson(names, row);
        RowKind kind = row.getKind();
        kinds[kind.ordinal()]++;
        boolean add = kind == RowKind.INSERT || kind == RowKind.UPDATE_AFTER;
        if (keyIdx.length > 0) {
          StringBuilder key = new StringBuilder();
          for (int k : keyIdx) {
            JsonRows.value(key, row.getField(k));
            key.append('\u0001');
          }
          if (add) {
            byKey.put(key.toString(), line);
          } else if (byKey.remove(key.toString()) == null) {
            throw new IllegalStateException(
                q + ": the changelog removes key " + key + " it never set: " + line);
          }
        } else {
          long n = counts.getOrDefault(line, 0L) + (add ? 1 : -1);
          if (n == 0) {
            counts.remove(line);
          } else {
            counts.put(line, n);
          }
        }
      }
    }
    System.err.printf(
        "NexmarkRunner: %s changelog: +I %d, -U %d, +U %d, -D %d%n",
        q, kinds[0], kinds[1], kinds[2], kinds[3]);
    if (keyIdx.length == 0 && kinds[RowKind.UPDATE_AFTER.ordinal()] > kinds[RowKind.UPDATE_BEFORE.ordinal()]) {
      throw new IllegalStateException(
          q + ": the changelog has +U rows without -U (upserts); declare the result's key"
              + " with '-- upsert-key: col, ...' in " + q + ".sql");
    }
    long rows = 0;
    if (out.getParent() != null) {
      Files.createDirectories(out.getParent());
    }
    try (BufferedWriter w = Files.newBufferedWriter(out, StandardCharsets.UTF_8)) {
      for (String line : byKey.values()) {
        w.write(line);
        w.write('\n');
        rows++;
      }
      for (Map.Entry<String, Long> e : counts.entrySet()) {
        if (e.getValue() < 0) {
          throw new IllegalStateException(
              q + ": the changelog retracts a row it never inserted (" + -e.getValue() + "x): "
                  + e.getKey());
        }
        for (long i = 0; i < e.getValue(); i++) {
          w.write(e.getKey());
          w.write('\n');
          rows++;
        }
      }
    }
    return rows;
  }

  /** The columns named by a {@code -- upsert-key: a, b} line of a SQL file (none: empty). */
  static List<String> upsertKey(String sqlText) {
    for (String line : sqlText.split("\n")) {
      String t = line.strip();
      if (t.startsWith("-- upsert-key:")) {
        List<String> cols = new ArrayList<>();
        for (String c : t.substring("-- upsert-key:".length()).split(",")) {
          if (!c.isBlank()) {
            cols.add(c.strip());
          }
        }
        return cols;
      }
    }
    return List.of();
  }

  static String resource(String name) throws IOException {
    try (InputStream in = NexmarkRunner.class.getResourceAsStream(name)) {
      if (in == null) {
        throw new IOException("resource " + name + " is missing from the jar");
      }
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }
  }

  /**
   * The statements of a SQL file: comment lines (starting with --) dropped, ${NAME}
   * placeholders replaced, split at a ';' that ends a line.
   */
  static List<String> statements(String text, Map<String, String> vars) {
    StringBuilder sb = new StringBuilder();
    for (String line : text.split("\n", -1)) {
      if (!line.strip().startsWith("--")) {
        sb.append(line).append('\n');
      }
    }
    String s = sb.toString();
    for (Map.Entry<String, String> e : vars.entrySet()) {
      s = s.replace("${" + e.getKey() + "}", e.getValue());
    }
    List<String> out = new ArrayList<>();
    for (String stmt : s.split(";[ \t]*\n")) {
      String t = stmt.strip();
      if (t.endsWith(";")) {
        t = t.substring(0, t.length() - 1).strip();
      }
      if (!t.isEmpty()) {
        out.add(t);
      }
    }
    return out;
  }

  /** The suite's side input for q13: rows "i,i" for i = 0..9999, in a temporary file. */
  static Path writeSideInput() throws IOException {
    Path p = Files.createTempFile("nexmark-side-input", ".csv");
    p.toFile().deleteOnExit();
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < 10000; i++) {
      sb.append(i).append(',').append(i).append('\n');
    }
    Files.writeString(p, sb.toString());
    return p;
  }

  static long countLines(Path path) throws IOException {
    long n = 0;
    byte[] buf = new byte[1 << 20];
    try (InputStream in = Files.newInputStream(path)) {
      int r;
      while ((r = in.read(buf)) > 0) {
        for (int i = 0; i < r; i++) {
          if (buf[i] == '\n') {
            n++;
          }
        }
      }
    }
    return n;
  }

  /** The process's peak resident set (VmHWM), in MiB; 0 where /proc is absent. */
  static double peakRssMb() {
    try {
      for (String line : Files.readAllLines(Paths.get("/proc/self/status"))) {
        if (line.startsWith("VmHWM:")) {
          String kb = line.substring(6).trim().split("\\s+")[0];
          return Long.parseLong(kb) / 1024.0;
        }
      }
    } catch (IOException | RuntimeException e) {
      return 0;
    }
    return 0;
  }
}
