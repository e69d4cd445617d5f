#!/usr/bin/env bash
# Records what the configuration layer shows the outside world, so that a change to
# src/config/ can be checked byte for byte: `-h`, `-V`, `-i`, the `stats settings` reply
# for several configurations, and the exact stderr and exit code of invalid invocations.
#
#   tools/config_battery.sh target/release/tessera OUTDIR
#   (then, after a change)  tools/config_battery.sh target/release/tessera OUTDIR2
#   diff -r OUTDIR OUTDIR2
#
# Every server started here is stopped by its pid; every wait is bounded.
set -u
BIN=$(realpath "$1")
OUT=$(realpath -m "$2")
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/tessera-battery.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
ROOT=$(cd "$(dirname "$0")/.." && pwd)

# Certificates for the TLS configurations (paths in config/tls.toml are relative).
"$BIN" certs --out "$WORK/certs" >/dev/null 2>&1

n=0
# out NAME ARGS...: stdout, stderr and exit code of one invocation that exits by itself.
out() {
    local name=$1
    shift
    (cd "$WORK" && timeout 20 "$BIN" "$@" >"$OUT/$name.stdout" 2>"$OUT/$name.stderr")
    echo $? >"$OUT/$name.code"
}

# settings NAME ARGS...: starts a server on a free port, records `stats settings`
# (the port line masked), stops it.
PORT_BASE=$((20000 + ($$ % 20000)))
settings() {
    local name=$1
    shift
    n=$((n + 1))
    local port=$((PORT_BASE + n))
    (cd "$WORK" && exec timeout 30 "$BIN" -p "$port" "$@" >"$OUT/$name.server.stdout" \
        2>"$OUT/$name.server.stderr") &
    local pid=$!
    python3 - "$port" "$TLS" >"$OUT/$name.settings" <<'EOF'
import socket, ssl, sys, time
port = int(sys.argv[1])
deadline = time.time() + 15
while True:
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
        break
    except OSError:
        if time.time() > deadline:
            print("NO SERVER")
            sys.exit(0)
        time.sleep(0.05)
if sys.argv[2] == "tls":
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s = ctx.wrap_socket(s)
s.sendall(b"stats settings\r\n")
buf = b""
while not buf.endswith(b"END\r\n") and time.time() < deadline:
    chunk = s.recv(65536)
    if not chunk:
        break
    buf += chunk
sys.stdout.write(buf.decode().replace("STAT tcpport %d\r" % port, "STAT tcpport PORT\r"))
EOF
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    # Only the warnings: the rest names ports and races with the shutdown.
    grep warning "$OUT/$name.server.stderr" >"$OUT/$name.warnings"
    rm -f "$OUT/$name.server.stderr"
}
TLS=plain

out help -h
out help_long --help
out version -V
out license -i
out help_after_flags -p 1 -h -x

settings defaults
settings many -l 127.0.0.1 -m 128 -c 500 -t 2 -b 64 -R 7 -I 2m -M -F -A -D / -vv -U 0 \
    -o idle_timeout=30,read_buf_max=8m,shard_queue=64,shutdown_timeout=3,cluster_config_set
settings long_forms --listen=127.0.0.1 --memory-limit=256 --conn-limit=77 --threads=1 \
    --listen-backlog=9 --max-reqs-per-event=3 --max-item-size=4m --disable-flush-all \
    --verbose=2 --extended=idle_timeout=5
settings ignored -l 127.0.0.1 -d -u nobody -k -L -C -f 1.5 -n 64 -r -X -W -B auto -N 2 -U 11211 \
    -o hashpower=20,modern,no_lru_crawler,read_buf_mem_limit=10,slab_automove=1,lru_maintainer,maxconns_fast,track_sizes
settings default_toml --config "$ROOT/config/default.toml"
TLS=tls
settings tls_toml --config "$ROOT/config/tls.toml" -l 127.0.0.1
settings tls_cli -l 127.0.0.1 -Z -o ssl_chain_cert=certs/server.pem,ssl_key=certs/server.key \
    -o ssl_ca_cert=certs/ca.pem,ssl_verify_mode=1,ssl_session_cache,ssl_kernel_tls=off \
    -o ssl_ciphers=TLS_AES_128_GCM_SHA256:ECDHE-RSA-AES128-GCM-SHA256,ssl_wbuf_size=32 \
    -o ssl_min_version=tlsv1.3,ssl_handshake_timeout=7,ssl_ktls_record_limit=100,ssl_keyformat=PEM
TLS=plain
settings tls_off_opts -l 127.0.0.1 -o ssl_verify_mode=9,ssl_wbuf_size=x,ssl_kernel_tls=maybe
settings admin -l 127.0.0.1 -o admin_listen=0
cat >"$WORK/full.toml" <<'EOF'
listen = "127.0.0.1"
memory_limit = 100
conn_limit = 99
threads = 2
listen_backlog = 50
max_item_size = 4096
verbose = 1
max_reqs_per_event = 4
idle_timeout = 9
read_buf_max = "64k"
shard_queue = 8
shutdown_timeout = 2
unix_mask = "600"
disable_cas = true
udp_port = 5
disable_flush_all = true
disable_evictions = true
enable_shutdown = true
[cluster]
version = 3
nodes = ["a.example|10.0.0.1|11211", "10.0.0.2:11212"]
allow_set = true
[admin]
listen = "127.0.0.1:0"
EOF
settings full_toml --config full.toml
settings toml_then_flags --config full.toml -m 64 -o shard_queue=3 -l 127.0.0.1,localhost

# Invalid invocations: stderr and exit code.
bad() {
    n=$((n + 1))
    out "bad_$(printf %03d $n)" "$@"
    printf '%s\n' "$*" >"$OUT/bad_$(printf %03d $n).args"
}
bad -x
bad -vx
bad --bogus
bad --mem=1
bad --p=1
bad --e=1
bad --c=1
bad --co x
bad --daemon=yes
bad -p abc
bad --port=abc
bad -p ""
bad -p +5
bad -p 70000
bad -p 99999999999999999999999
bad -t 0
bad -t -1
bad -t 1025
bad -m 0
bad -m 18446744073709551616
bad -c 0
bad -b 0
bad -R 0
bad -a 800
bad -a 1000
bad -a ""
bad -a 77777777777777
bad -D ""
bad -D ab
bad -D -v
bad -p
bad -vp
bad --port
bad -D
bad --config
bad 11211
bad - x
bad -- x
bad -s ""
bad -I 1023
bad -I 2g
bad -I 1x
bad -I m
bad -I 33m
bad -m 1
bad -I 99999999999999999999k
bad -I 2m -o read_buf_max=2m
bad -B binary
bad -B udp
bad -S
bad -Y /etc/auth
bad -e /dev/shm/x
bad -o bogus=1
bad -o ssl_foo=1
bad -o ext_path=/x:1G
bad -o proxy_config=/x.lua
bad -o idle_timeout
bad -o idle_timeout=x
bad -o shard_queue=0
bad -o shard_queue=1048577
bad -o shutdown_timeout=86401
bad -o read_buf_max=1k
bad -o read_buf_max=5g
bad -o ssl_key
bad -o cluster_config_set=maybe
bad -o admin_listen
bad -o admin_listen=70000
bad -o admin_listen=localhost:9150
bad -l "[::1"
bad -l "[1.2.3.4]:5"
bad -l "::1:99999"
bad -l 1.2.3.4:x
bad -l 1.2.3.4:65536
bad -l 999.1.1.1
bad -l a,,b
bad -l notls:
bad -l "bad host"
bad -l mtls:127.0.0.1 -p 0
bad -l permissive:127.0.0.1 -p 0
bad -Z -l notls:mtls:127.0.0.1 -p 0
bad -l no-such-host.invalid -p 0
bad -Z -l 127.0.0.1 -p 0
bad -Z -l 127.0.0.1 -p 0 -o ssl_chain_cert=certs/server.pem
bad -Z -l 127.0.0.1 -p 0 -o ssl_chain_cert=certs/server.pem,ssl_key=certs/server.key,ssl_verify_mode=9
bad -Z -l 127.0.0.1 -p 0 -o ssl_chain_cert=certs/server.pem,ssl_key=certs/server.key,ssl_verify_mode=2
bad -Z -l 127.0.0.1 -p 0 -o ssl_chain_cert=certs/server.pem,ssl_key=certs/server.key,ssl_keyformat=3
bad -Z -l 127.0.0.1 -p 0 -o ssl_chain_cert=certs/server.pem,ssl_key=certs/server.key,ssl_min_version=tlsv1.1
bad -Z -l 127.0.0.1 -p 0 -o ssl_chain_cert=certs/server.pem,ssl_key=certs/server.key,ssl_min_version=x
bad -Z -l 127.0.0.1 -p 0 -o ssl_chain_cert=certs/server.pem,ssl_key=certs/server.key,ssl_ciphers=FOO
bad -Z -l 127.0.0.1 -p 0 -o ssl_chain_cert=certs/server.pem,ssl_key=certs/server.key,ssl_ciphers=ECDHE-RSA-AES128-GCM-SHA256,ssl_min_version=tlsv1.3
bad -Z -l 127.0.0.1 -p 0 -o ssl_chain_cert=certs/server.pem,ssl_key=certs/server.key,ssl_wbuf_size=0
bad -Z -l 127.0.0.1 -p 0 -o ssl_chain_cert=certs/server.pem,ssl_key=certs/server.key,ssl_handshake_timeout=0
bad -Z -l 127.0.0.1 -p 0 -o ssl_chain_cert=certs/server.pem,ssl_key=certs/server.key,ssl_ktls_record_limit=5
bad -Z -l 127.0.0.1 -p 0 -o ssl_chain_cert=certs/server.pem,ssl_key=certs/server.key,ssl_kernel_tls=maybe
bad -Z -l 127.0.0.1 -p 0 -o ssl_chain_cert=/nonexistent.pem,ssl_key=certs/server.key
bad -Z -l mtls:127.0.0.1 -p 0 -o ssl_chain_cert=certs/server.pem,ssl_key=certs/server.key
bad -Z -l 127.0.0.1 -p abc -o ssl_verify_mode=9
bad --config /nonexistent/tessera/none.toml
bad --config "$ROOT/config/default.toml" --config "$ROOT/config/default.toml"
bad --config "$ROOT/config/default.toml" -m 1
toml_bad() {
    n=$((n + 1))
    printf '%b' "$1" >"$WORK/bad$n.toml"
    out "bad_$(printf %03d $n)" --config "bad$n.toml"
    printf 'toml: %s\n' "$1" >"$OUT/bad_$(printf %03d $n).args"
}
toml_bad 'port = 1\nprot = 2\n'
toml_bad '[tls]\ncert = "x"\n'
toml_bad '[cluster]\nfoo = 1\n'
toml_bad '[admin]\nfoo = 1\n'
toml_bad 'port = 70000\n'
toml_bad 'port = "x"\n'
toml_bad 'port = \n'
toml_bad 'max_item_size = "1q"\n'
toml_bad 'max_item_size = true\n'
toml_bad 'max_item_size = -1\n'
toml_bad 'read_buf_max = 1\n'
toml_bad 'unix_mask = 700\n'
toml_bad 'unix_mask = true\n'
toml_bad 'unix_mask = "9"\n'
toml_bad 'listen = 5\n'
toml_bad 'listen = [5]\n'
toml_bad 'listen = "a,,b"\n'
toml_bad 'threads = 0\n'
toml_bad 'verbose = 256\n'
toml_bad 'shard_queue = 0\n'
toml_bad 'idle_timeout = -1\n'
toml_bad 'enable_shutdown = 1\n'
toml_bad 'unix_socket = ""\n'
toml_bad 'tls = 5\n'
toml_bad '[tls]\nkernel = 1.5\n'
toml_bad '[tls]\nenabled = true\nkernel = "maybe"\nchain_cert = "certs/server.pem"\nkey = "certs/server.key"\nlisten = 1\n'
toml_bad '[tls]\nenabled = true\nchain_cert = "certs/server.pem"\nkey = "certs/server.key"\nwbuf_size = 0\n'
toml_bad '[tls]\nsession_cache = "yes"\n'
toml_bad '[cluster]\nnodes = []\n'
toml_bad '[cluster]\nversion = 2\n'
toml_bad '[cluster]\nversion = -1\nnodes = ["h:1"]\n'
toml_bad '[cluster]\nnodes = ["h|x|1"]\n'
toml_bad '[admin]\nlisten = "localhost:9150"\n'
toml_bad '[admin]\nlisten = true\n'
toml_bad 'memory_limit = 4\nmax_item_size = "4m"\n'
toml_bad 'max_item_size = "2m"\nread_buf_max = "2m"\n'
toml_bad 'listen = "mtls:127.0.0.1"\nport = 0\n'
echo "battery: $n cases written to $OUT"
