#!/usr/bin/env bash
# Apache Flink (a MiniCluster inside one JVM) running the Nexmark queries as Flink SQL,
# from jars fetched from Maven Central by bench/flink/pom.xml.
#
#   scripts/flink.sh build        # mvn package (once; again when bench/flink changes):
#                                 # bench/flink/target/sabot-flink-bench.jar + target/lib/
#   scripts/flink.sh run ARGS...  # builds if needed, then runs sabot.bench.flink.NexmarkRunner
#   scripts/flink.sh jar          # builds if needed, prints the jar's path
#   scripts/flink.sh version      # prints the Flink version the pom names
#
# The jar's manifest names the Flink jars in bench/flink/target/lib (Class-Path), so
# `java -cp bench/flink/target/sabot-flink-bench.jar sabot.bench.flink.NexmarkRunner ...`
# works too. Flink's classpath is that directory alone: the Kafka broker (scripts/kafka.sh)
# runs from its own jars. SABOT_FLINK_JAVA_OPTS overrides the JVM options.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PROJECT="$ROOT/bench/flink"
JAR="$PROJECT/target/sabot-flink-bench.jar"
STAMP="$PROJECT/target/.built"

log() { echo "flink.sh: $*" >&2; }

# True when the jar is missing or older than a file of the Maven project.
stale() {
  [ -f "$JAR" ] && [ -f "$STAMP" ] || return 0
  [ -n "$(find "$PROJECT/pom.xml" "$PROJECT/src" -newer "$STAMP" -print -quit)" ]
}

build() {
  command -v java >/dev/null || { log "java not found (install a JDK 17)"; exit 1; }
  command -v mvn >/dev/null || { log "mvn not found (install Maven)"; exit 1; }
  log "building $JAR (Flink $(version)) with Maven"
  (cd "$PROJECT" && mvn -q -B clean package 1>&2)
  touch "$STAMP"
}

version() { sed -n 's:.*<flink.version>\(.*\)</flink.version>.*:\1:p' "$PROJECT/pom.xml"; }

java_opts() {
  echo "${SABOT_FLINK_JAVA_OPTS:--Xms512m -Xmx3g -XX:+UseG1GC -Djava.awt.headless=true}" \
    "--add-opens=java.base/java.util=ALL-UNNAMED --add-opens=java.base/java.lang=ALL-UNNAMED" \
    "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED --add-opens=java.base/java.io=ALL-UNNAMED" \
    "--add-opens=java.base/java.net=ALL-UNNAMED --add-opens=java.base/java.nio=ALL-UNNAMED" \
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED --add-opens=java.base/java.time=ALL-UNNAMED" \
    "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED" \
    "--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED" \
    "--add-opens=java.base/java.math=ALL-UNNAMED --add-opens=java.base/java.text=ALL-UNNAMED"
}

case "${1:-}" in
  build)
    build
    ;;
  jar)
    if stale; then build; fi
    echo "$JAR"
    ;;
  run)
    shift
    if stale; then build; fi
    # shellcheck disable=SC2046
    exec java $(java_opts) -cp "$JAR" sabot.bench.flink.NexmarkRunner "$@"
    ;;
  version)
    version
    ;;
  *)
    echo "usage: $0 build|jar|run ARGS...|version" >&2
    exit 2
    ;;
esac
