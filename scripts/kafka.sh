#!/usr/bin/env bash
# A single-node Apache Kafka broker (KRaft combined mode: broker + controller in one
# JVM) on 127.0.0.1, run from jars fetched from Maven Central by bench/kafka/pom.xml.
#
#   scripts/kafka.sh up      # fetch jars once, format storage once, start, wait; prints
#                            # the bootstrap address. Idempotent: if up, just prints it.
#   scripts/kafka.sh down    # stops the broker (its data stays in build/kafka/data)
#   scripts/kafka.sh status  # prints the address and exits 0 if up, 1 if not
#   scripts/kafka.sh reset   # down, then delete build/kafka (logs and data)
#
# Jars are cached in ~/.cache/sabot/kafka-<version>/libs (SABOT_KAFKA_CACHE overrides
# ~/.cache/sabot). Logs: build/kafka/server.log. Topics are not auto-created: tests
# and examples create the topics they use.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$ROOT/bench/kafka/pom.xml")"
PORT="${SABOT_KAFKA_PORT:-19092}"
CONTROLLER_PORT="${SABOT_KAFKA_CONTROLLER_PORT:-19093}"
ADDRESS="127.0.0.1:${PORT}"
CACHE="${SABOT_KAFKA_CACHE:-$HOME/.cache/sabot}/kafka-${VERSION}"
LIBS="$CACHE/libs"
# A broker on another port (e.g. the chaos test's own) keeps its own directory.
DIR="${SABOT_KAFKA_DIR:-$ROOT/build/kafka$([ "$PORT" = 19092 ] || echo "-$PORT")}"
DATA="$DIR/data"
PIDFILE="$DIR/kafka.pid"
LOG="$DIR/server.log"

log() { echo "kafka.sh: $*" >&2; }

fetch_jars() {
  if [ -f "$LIBS/.complete" ]; then return; fi
  log "fetching Kafka ${VERSION} jars from Maven Central into $LIBS"
  rm -rf "$LIBS"
  mkdir -p "$LIBS"
  (cd "$ROOT/bench/kafka" &&
    mvn -q -B dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$LIBS" 1>&2)
  touch "$LIBS/.complete"
}

classpath() { echo "$LIBS/*"; }

write_config() {
  mkdir -p "$DIR"
  cat >"$DIR/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${CONTROLLER_PORT}
listeners=PLAINTEXT://127.0.0.1:${PORT},CONTROLLER://127.0.0.1:${CONTROLLER_PORT}
advertised.listeners=PLAINTEXT://127.0.0.1:${PORT}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=${DATA}
num.partitions=1
auto.create.topics.enable=false
delete.topic.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=24
log.segment.bytes=268435456
EOF
  cat >"$DIR/log4j2.properties" <<'EOF'
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = out
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
EOF
}

is_running() {
  [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

is_ready() {
  kcat -L -b "$ADDRESS" -m 2 >/dev/null 2>&1
}

java_opts() {
  echo "-Xms256m -Xmx1g -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true" \
    "-Dlog4j2.configurationFile=$DIR/log4j2.properties"
}

up() {
  if is_running && is_ready; then
    echo "$ADDRESS"
    return
  fi
  if is_running; then
    log "broker process $(cat "$PIDFILE") is starting; waiting"
  else
    if is_ready; then
      log "something else already listens on $ADDRESS; using it"
      echo "$ADDRESS"
      return
    fi
    fetch_jars
    write_config
    if [ ! -f "$DATA/meta.properties" ]; then
      mkdir -p "$DATA"
      local cluster_id
      # shellcheck disable=SC2046
      cluster_id="$(java $(java_opts) -cp "$(classpath)" kafka.tools.StorageTool random-uuid)"
      # shellcheck disable=SC2046
      java $(java_opts) -cp "$(classpath)" kafka.tools.StorageTool format \
        -t "$cluster_id" -c "$DIR/server.properties" >>"$LOG" 2>&1 ||
        { log "formatting storage failed; see $LOG"; tail -20 "$LOG" >&2; exit 1; }
    fi
    # shellcheck disable=SC2046
    nohup java $(java_opts) -cp "$(classpath)" kafka.Kafka "$DIR/server.properties" \
      >>"$LOG" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
  fi
  for _ in $(seq 1 120); do
    if is_ready; then
      log "Kafka ${VERSION} up (pid $(cat "$PIDFILE"), log $LOG)"
      echo "$ADDRESS"
      return
    fi
    if ! is_running; then
      log "the broker exited during start-up; last lines of $LOG:"
      tail -30 "$LOG" >&2
      exit 1
    fi
    sleep 0.5
  done
  log "the broker did not become ready within 60 s; see $LOG"
  exit 1
}

down() {
  if ! is_running; then
    rm -f "$PIDFILE"
    log "not running"
    return
  fi
  local pid
  pid="$(cat "$PIDFILE")"
  kill "$pid"
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "broker $pid did not stop in 30 s; killing it"
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$PIDFILE"
  log "stopped"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status)
    if is_ready; then echo "$ADDRESS"; else exit 1; fi
    ;;
  reset)
    down
    rm -rf "$DIR"
    ;;
  classpath)
    fetch_jars
    classpath
    ;;
  *)
    echo "usage: $0 up|down|status|reset|classpath" >&2
    exit 2
    ;;
esac
