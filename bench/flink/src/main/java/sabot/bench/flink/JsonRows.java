package sabot.bench.flink;

import java.math.BigDecimal;
import java.time.Instant;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.List;
import org.apache.flink.types.Row;

/**
 * One result row as a JSON object in the comparison's form: columns in select-list order,
 * numbers as JSON numbers (DECIMAL in plain notation), TIMESTAMP / TIMESTAMP_LTZ as
 * "YYYY-MM-DD HH:MM:SS.mmm" (UTC), NULL as null.
 */
final class JsonRows {
  static final DateTimeFormatter TS = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss.SSS");

  private JsonRows() {}

  static String toJson(List<String> names, Row row) {
    StringBuilder sb = new StringBuilder(256);
    sb.append('{');
    for (int i = 0; i < names.size(); i++) {
      if (i > 0) {
        sb.append(", ");
      }
      string(sb, names.get(i));
      sb.append(": ");
      value(sb, row.getField(i));
    }
    sb.append('}');
    return sb.toString();
  }

  static void value(StringBuilder sb, Object v) {
    if (v == null) {
      sb.append("null");
    } else if (v instanceof String s) {
      string(sb, s);
    } else if (v instanceof BigDecimal d) {
      sb.append(d.toPlainString());
    } else if (v instanceof Double d) {
      if (d.isNaN() || d.isInfinite()) {
        string(sb, d.toString());
      } else {
        sb.append(d.doubleValue());
      }
    } else if (v instanceof Float f) {
      sb.append(f.doubleValue());
    } else if (v instanceof Number || v instanceof Boolean) {
      sb.append(v);
    } else if (v instanceof LocalDateTime t) {
      string(sb, TS.format(t));
    } else if (v instanceof Instant t) {
      string(sb, TS.format(LocalDateTime.ofInstant(t, ZoneOffset.UTC)));
    } else {
      string(sb, v.toString());
    }
  }

  static void string(StringBuilder sb, String s) {
    sb.append('"');
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '"':
          sb.append("\\\"");
          break;
        case '\\':
          sb.append("\\\\");
          break;
        case '\n':
          sb.append("\\n");
          break;
        case '\r':
          sb.append("\\r");
          break;
        case '\t':
          sb.append("\\t");
          break;
        default:
          if (c < 0x20) {
            sb.append(String.format("\\u%04x", (int) c));
          } else {
            sb.append(c);
          }
      }
    }
    sb.append('"');
  }
}
