#!/usr/bin/env bash
# A private, real Docker engine for the Docker lane of the test suite: Debian's dockerd on its own socket,
# data root, exec root and pid file (nothing else on the machine mistakes it for the user's engine), the
# stand-in images the lab needs built locally (no image registry is reachable here), and the Docker
# Compose CLI plugin from tests/tools/build-compose-plugin.sh in a private DOCKER_CONFIG.
#
# Usage:
#   bash tests/tools/docker-engine.sh run [--] CMD...   start the engine, build the images, run CMD with
#                                                       the engine's environment, stop the engine (also on
#                                                       failure or ^C); exits with CMD's status
#   bash tests/tools/docker-engine.sh start             start it and build the images; prints the env file
#   bash tests/tools/docker-engine.sh stop              stop an engine `start` left running
#
# The data root lives in the labctl cache, so images survive between runs: a second run builds nothing.
# Images are tagged under test names (labctl-test/...), never under the upstream names in
# compose/versions.env; CMD sees them through LAB_COLLECTOR_IMAGE, LAB_PROMETHEUS_IMAGE,
# LAB_ALERTMANAGER_IMAGE, LAB_VICTORIALOGS_IMAGE, LAB_JAEGER_IMAGE, LAB_PYTHON_IMAGE.
# Grafana has no stand-in: LAB_GRAFANA_IMAGE stays unset (the upstream image is absent in this engine).
#
# When no engine can start the script says why and exits 69 (EX_UNAVAILABLE); CMD does not run.
# Env: LABCTL_CACHE_DIR (default ~/.cache/labctl), LABCTL_ENGINE_STORAGE (overlay2 | vfs; default: try
#      overlay2, then vfs), LABCTL_COMPOSE_PLUGIN (a built plugin; default: build-compose-plugin.sh's).
set -euo pipefail

cd "$(dirname "$0")/../.."
repo=$PWD
cache="${LABCTL_CACHE_DIR:-$HOME/.cache/labctl}"
home="$cache/docker-engine"
run_dir="${TMPDIR:-/tmp}/labctl-engine-$(id -u)"   # short: unix socket paths are limited to 108 bytes
sock="$run_dir/docker.sock"
pidfile="$run_dir/dockerd.pid"
envfile="$run_dir/env"
log="$home/dockerd.log"

say() { printf '[docker-engine] %s\n' "$*" >&2; }
die() { say "$*"; exit 69; }
now() { date +%s.%N; }
took() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi
}

install_packages() {
  local missing=()
  [ -x /usr/sbin/dockerd ] || missing+=(docker.io)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing ${missing[*]} (apt)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null \
    && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null \
    || die "cannot install ${missing[*]} with apt (needs root): no engine for the docker lane"
}

# The Debian mirror this machine's apt uses (deb822 .sources or one-line lists), never a fixed host.
apt_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk 'BEGIN { RS = ""; FS = "\n" }
      { uris = ""; suites = ""; types = ""
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^URIs:/) { uris = $i; sub(/^URIs:[ \t]*/, "", uris) }
          if ($i ~ /^Suites:/) { suites = $i }
          if ($i ~ /^Types:/) { types = $i } }
        if (types ~ /[ \t]deb([ \t]|$)/ && suites ~ /[ \t]bookworm([ \t]|$)/) { split(uris, u, /[ \t]+/); print u[1]; exit } }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } if ($(i + 1) == "bookworm") { print $i; exit } }' "$f"
  done
}

engine_up() { DOCKER_HOST="unix://$sock" docker_cli version --format '{{.Server.Version}}' >/dev/null 2>&1; }

# The client the lane uses: the machine's docker CLI when it negotiates with this daemon, else Debian's.
docker_cli() { "${DOCKER_CLI:-docker}" "$@"; }

start_engine() {
  mkdir -p "$home" "$run_dir"
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null && engine_up; then
    say "engine already running (pid $(cat "$pidfile"))"
    return 0
  fi
  local drivers=("${LABCTL_ENGINE_STORAGE:-overlay2}")
  [ -z "${LABCTL_ENGINE_STORAGE:-}" ] && drivers+=(vfs)
  local driver
  for driver in "${drivers[@]}"; do
    rm -f "$sock" "$pidfile"
    # No default bridge and no iptables/ip-forward changes: the lab's own compose networks are all it
    # needs (ports publish on 127.0.0.1 through docker-proxy), and the host's firewall stays untouched.
    as_root dockerd --host "unix://$sock" --data-root "$home/data-$driver" --exec-root "$run_dir/exec" \
      --pidfile "$pidfile" --storage-driver "$driver" --bridge none --iptables=false --ip-forward=false \
      --ip-masq=false --userland-proxy=true --log-level warn >>"$log" 2>&1 &
    local pid=$! i
    for i in $(seq 1 120); do
      engine_up && { say "engine up (dockerd pid $pid, storage $driver, socket $sock)"; return 0; }
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.25
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    say "dockerd did not start with storage driver $driver: $(grep -v '^$' "$log" | tail -n 1)"
  done
  die "no Docker engine could start here (see $log)"
}

stop_engine() {
  [ -f "$pidfile" ] || return 0
  local pid
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    # Containers first (compose projects a failed test left), then the daemon.
    local ids
    ids=$(DOCKER_HOST="unix://$sock" docker_cli ps -aq 2>/dev/null || true)
    [ -n "$ids" ] && DOCKER_HOST="unix://$sock" docker_cli rm -f $ids >/dev/null 2>&1 || true
    # What failed tests left in this private engine (never the user's): the cached images stay.
    DOCKER_HOST="unix://$sock" docker_cli network prune -f >/dev/null 2>&1 || true
    DOCKER_HOST="unix://$sock" docker_cli volume prune -f >/dev/null 2>&1 || true
    as_root kill "$pid" 2>/dev/null || true
    local i
    for i in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && as_root kill -9 "$pid" 2>/dev/null || true
    say "engine stopped"
  fi
  rm -f "$pidfile" "$sock" "$envfile"
}

has_image() { docker_cli image inspect "$1" >/dev/null 2>&1; }

# A Debian bookworm base from the machine's apt mirror: python3 (as `python`, pip allowed), CA
# certificates, wget for healthchecks. Tagged by what went into it, so it is built once per machine.
build_base() {
  local mirror include key tag
  mirror=$(apt_mirror | head -n 1)
  [ -n "$mirror" ] || die "no bookworm mirror in /etc/apt/sources.list*: cannot build the base image"
  include=python3,python3-pip,python3-venv,ca-certificates,wget,busybox
  key=$(printf '%s %s' "$mirror" "$include" | sha256sum | cut -c1-12)
  tag="labctl-test/bookworm:$key"
  BASE_IMAGE=$tag
  has_image "$tag" && return 0
  local started root
  started=$(now)
  root=$(mktemp -d "$home/rootfs.XXXXXX")
  say "building the bookworm base image with debootstrap (once per machine; a few minutes)"
  as_root debootstrap --variant=minbase --include="$include" bookworm "$root" "$mirror" \
    >"$home/debootstrap.log" 2>&1 || { rm -rf "$root"; die "debootstrap failed (see $home/debootstrap.log)"; }
  # Like the official python image: `python` on PATH and pip allowed to install into the system.
  as_root ln -sf python3 "$root/usr/bin/python"
  as_root rm -f "$root"/usr/lib/python3*/EXTERNALLY-MANAGED
  as_root rm -rf "$root/var/cache/apt/archives"/*.deb "$root/var/lib/apt/lists"/* "$root/usr/share/doc" \
    "$root/usr/share/man" "$root/usr/share/locale"
  as_root tar -C "$root" -c . | docker_cli import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' --change 'CMD ["bash"]' - "$tag" >/dev/null
  as_root rm -rf "$root"
  say "base image $tag built in $(took "$started")s"
}

# One image around a binary, tagged by the binary's content: rebuilt only when the binary changes.
build_wrapped() {
  local name=$1 binary=$2 dockerfile=$3 sum tag ctx
  [ -x "$binary" ] || die "$binary is missing: run \`labctl install ${name%%-*}\` first"
  sum=$(sha256sum "$binary" | cut -c1-12)
  tag="labctl-test/$name:$sum-${BASE_IMAGE##*:}"
  printf '%s' "$tag"
  has_image "$tag" && return 0
  local started
  started=$(now)
  ctx=$(mktemp -d "$home/ctx.XXXXXX")
  cp "$binary" "$ctx/"
  [ -x "$(dirname "$binary")/promtool" ] && [ "$name" = prometheus ] && cp "$(dirname "$binary")/promtool" "$ctx/"
  [ -x "$(dirname "$binary")/amtool" ] && [ "$name" = alertmanager ] && cp "$(dirname "$binary")/amtool" "$ctx/"
  printf '%s\n' "$dockerfile" >"$ctx/Dockerfile"
  docker_cli build --quiet --network none --build-arg "BASE=$BASE_IMAGE" -t "$tag" "$ctx" >"$home/build-$name.log" 2>&1 \
    || { rm -rf "$ctx"; die "building $tag failed (see $home/build-$name.log)"; }
  rm -rf "$ctx"
  say "image $tag built in $(took "$started")s"
}

# Like otel/opentelemetry-collector-contrib: the binary as entrypoint, user 10001, a default config path.
COLLECTOR_DOCKERFILE='ARG BASE
FROM ${BASE}
COPY otelcol-lab /otelcol-contrib
RUN mkdir -p /etc/otelcol-contrib
USER 10001:10001
EXPOSE 4317 4318 8888 8889 13133
ENTRYPOINT ["/otelcol-contrib"]
CMD ["--config", "/etc/otelcol-contrib/config.yaml"]'

# Like prom/prometheus: /bin/prometheus as entrypoint, user nobody, /prometheus its data dir, busybox wget.
PROMETHEUS_DOCKERFILE='ARG BASE
FROM ${BASE}
COPY prometheus promtool* /bin/
RUN mkdir -p /prometheus /etc/prometheus && chown -R 65534:65534 /prometheus /etc/prometheus \
 && ln -sf /bin/busybox /usr/local/bin/wget
USER 65534:65534
WORKDIR /prometheus
VOLUME ["/prometheus"]
EXPOSE 9090
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]'

# Like prom/alertmanager: /bin/alertmanager as entrypoint, user nobody, /alertmanager its data dir.
ALERTMANAGER_DOCKERFILE='ARG BASE
FROM ${BASE}
COPY alertmanager amtool* /bin/
RUN mkdir -p /alertmanager /etc/alertmanager && chown -R 65534:65534 /alertmanager /etc/alertmanager \
 && ln -sf /bin/busybox /usr/local/bin/wget
USER 65534:65534
WORKDIR /alertmanager
VOLUME ["/alertmanager"]
EXPOSE 9093
ENTRYPOINT ["/bin/alertmanager"]
CMD ["--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"]'

# Like victoriametrics/victoria-logs: the binary as entrypoint, /victoria-logs-data its data dir.
VICTORIALOGS_DOCKERFILE='ARG BASE
FROM ${BASE}
COPY victoria-logs /victoria-logs-prod
RUN mkdir -p /victoria-logs-data && ln -sf /bin/busybox /usr/local/bin/wget
VOLUME ["/victoria-logs-data"]
EXPOSE 9428
ENTRYPOINT ["/victoria-logs-prod"]'

# Like jaegertracing/jaeger: the binary as entrypoint at /cmd/jaeger/jaeger-linux, user 10001, busybox wget.
JAEGER_DOCKERFILE='ARG BASE
FROM ${BASE}
COPY jaeger /cmd/jaeger/jaeger-linux
RUN ln -sf /bin/busybox /usr/local/bin/wget
ENV JAEGER_LISTEN_HOST=0.0.0.0
USER 10001
EXPOSE 4317 4318 16685 16686 13133
ENTRYPOINT ["/cmd/jaeger/jaeger-linux"]'

build_images() {
  local started bin
  started=$(now)
  bin="$cache/bin"
  build_base
  local collector prometheus alertmanager victorialogs jaeger
  collector=$(build_wrapped collector "$bin/otelcol-lab" "$COLLECTOR_DOCKERFILE") || exit 69
  prometheus=$(build_wrapped prometheus "$bin/prometheus" "$PROMETHEUS_DOCKERFILE") || exit 69
  alertmanager=$(build_wrapped alertmanager "$bin/alertmanager" "$ALERTMANAGER_DOCKERFILE") || exit 69
  victorialogs=$(build_wrapped victorialogs "$bin/victoria-logs" "$VICTORIALOGS_DOCKERFILE") || exit 69
  jaeger=$(build_wrapped jaeger "$bin/jaeger" "$JAEGER_DOCKERFILE") || exit 69
  {
    printf 'export LAB_PYTHON_IMAGE=%q\n' "$BASE_IMAGE"
    printf 'export LAB_COLLECTOR_IMAGE=%q\n' "$collector"
    printf 'export LAB_PROMETHEUS_IMAGE=%q\n' "$prometheus"
    printf 'export LAB_ALERTMANAGER_IMAGE=%q\n' "$alertmanager"
    printf 'export LAB_VICTORIALOGS_IMAGE=%q\n' "$victorialogs"
    printf 'export LAB_JAEGER_IMAGE=%q\n' "$jaeger"
  } >>"$envfile"
  say "images ready in $(took "$started")s"
}

compose_plugin() {
  local plugin=${LABCTL_COMPOSE_PLUGIN:-}  # run-all.sh has built it already
  if [ -z "$plugin" ] || [ ! -x "$plugin" ]; then
    plugin=$(bash tests/tools/build-compose-plugin.sh) || die "the docker compose plugin could not be built"
  fi
  mkdir -p "$run_dir/docker-config/cli-plugins"
  ln -sf "$plugin" "$run_dir/docker-config/cli-plugins/docker-compose"
}

write_env() {
  {
    printf 'export DOCKER_HOST=%q\n' "unix://$sock"
    printf 'export DOCKER_CONFIG=%q\n' "$run_dir/docker-config"
    printf 'export LABCTL_DOCKER_LANE=1\n'
    printf 'export LABCTL_ENGINE_RUN_DIR=%q\n' "$run_dir"
  } >"$envfile"
  [ -n "${DOCKER_CLI:-}" ] && printf 'export PATH=%q:"$PATH"\n' "$run_dir/bin" >>"$envfile"
  return 0
}

# The machine's docker CLI may be newer than dockerd 20.10: use it when it negotiates, else Debian's.
choose_cli() {
  if ! engine_up && DOCKER_CLI=/usr/bin/docker engine_up; then
    export DOCKER_CLI=/usr/bin/docker
    mkdir -p "$run_dir/bin"
    ln -sf /usr/bin/docker "$run_dir/bin/docker"
    say "the docker CLI on PATH does not talk to dockerd $(DOCKER_HOST="unix://$sock" /usr/bin/docker version --format '{{.Server.Version}}'); using /usr/bin/docker"
  fi
}

start_all() {
  local started
  started=$(now)
  install_packages
  start_engine
  choose_cli
  write_env
  compose_plugin
  export DOCKER_HOST="unix://$sock" DOCKER_CONFIG="$run_dir/docker-config"
  build_images
  say "engine and images ready in $(took "$started")s"
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
  start)
    start_all
    echo "$envfile"
    ;;
  stop)
    stop_engine
    ;;
  run)
    [ "${1:-}" = "--" ] && shift
    [ $# -gt 0 ] || { echo "usage: $0 run [--] CMD..." >&2; exit 2; }
    mkdir -p "$home"
    exec 9>"$home/lock"
    flock -w 1800 9 || die "another docker lane holds $home/lock"
    trap stop_engine EXIT
    trap 'exit 130' INT TERM
    start_all
    # shellcheck disable=SC1090
    source "$envfile"
    status=0
    "$@" || status=$?
    exit "$status"
    ;;
  *)
    echo "usage: $0 run [--] CMD... | start | stop" >&2
    exit 2
    ;;
esac
