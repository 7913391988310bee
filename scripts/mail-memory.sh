#!/usr/bin/env bash
# Peak memory of the inbound mail path with large messages (docs/PERFORMANCE.md, "Memory per
# message"): `ferrodesk mail ingest` on messages of about 120 MB, and a server taking three
# 45 MB relay deliveries at once. Release build; needs python3 and /usr/bin/time (Debian's
# `time` package). Prints peak resident memory in MiB next to the message size.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -q -p ferrodesk
BIN="$PWD/target/release/ferrodesk"
export FERRODESK_LOG=warn
WORK=$(mktemp -d /tmp/ferrodesk-mail-memory.XXXXXX)
trap 'kill "${SERVER:-0}" 2>/dev/null || true; rm -rf "$WORK"' EXIT

# A message of one text part and N base64 attachments of SIZE MiB each, random bytes.
make_message() { # FILE ID COUNT SIZE_MIB
    python3 - "$@" <<'EOF'
import base64, os, sys
path, mid, count, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
with open(path, 'wb') as f:
    f.write(b"From: Ann <ann@customer.example>\r\nTo: help@desk.example\r\nSubject: large\r\n"
            b"Message-ID: <" + mid.encode() + b"@customer.example>\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n")
    for i in range(count):
        f.write(b"--XX\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
                b"Content-Disposition: attachment; filename=f%d.bin\r\n\r\n" % i)
        f.write(base64.encodebytes(os.urandom(size * 1024 * 1024)).replace(b"\n", b"\r\n"))
    f.write(b"--XX--\r\n")
EOF
}

peak_of_ingest() { # LABEL FILE MAILBOX
    local out
    out=$( { /usr/bin/time -f '%M' "$BIN" --data-dir "$WORK/data" mail ingest --mailbox "$3" < "$2" >/dev/null; } 2>&1 | tail -n 1)
    printf '%-48s message %4d MiB   peak %4d MiB\n' "$1" $(( $(stat -c %s "$2") / 1048576 )) $(( out / 1024 ))
}

"$BIN" --data-dir "$WORK/data" mailbox add support --address help@desk.example >/dev/null
"$BIN" --data-dir "$WORK/data" mailbox add large --address large@desk.example --max-message-mib 256 >/dev/null

make_message "$WORK/one-88.eml" one-88 1 88
make_message "$WORK/four-20.eml" four-20 4 20
make_message "$WORK/over.eml" over 1 88
peak_of_ingest "pipe: over the mailbox limit (kept, unread)" "$WORK/over.eml" support
peak_of_ingest "pipe: one 88 MiB file (over the file limit)" "$WORK/one-88.eml" large
peak_of_ingest "pipe: four 20 MiB files (kept)" "$WORK/four-20.eml" large

# Three 45 MB deliveries to the relay endpoint at once.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$BIN" --data-dir "$WORK/data" user create --email relay@desk.example --name Relay --role admin >/dev/null
TOKEN=$("$BIN" --data-dir "$WORK/data" token create --user relay@desk.example)
"$BIN" --data-dir "$WORK/data" serve --listen "127.0.0.1:$PORT" >/dev/null 2>&1 &
SERVER=$!
until curl -s "http://127.0.0.1:$PORT/healthz" >/dev/null; do sleep 0.1; done
for i in 1 2 3; do make_message "$WORK/relay-$i.eml" "relay-$i" 2 16; done
idle=$(awk '/VmRSS/ {print $2}' "/proc/$SERVER/status")
CLIENTS=()
for i in 1 2 3; do
    curl -s -o /dev/null -H "Authorization: Bearer $TOKEN" -H 'Content-Type: message/rfc822' \
        --data-binary "@$WORK/relay-$i.eml" "http://127.0.0.1:$PORT/api/v1/mail/inbound?mailbox=support" &
    CLIENTS+=($!)
done
wait "${CLIENTS[@]}"
peak=$(awk '/VmHWM/ {print $2}' "/proc/$SERVER/status")
printf '%-48s message %4d MiB   idle %d MiB, peak %d MiB\n' "relay: three at once (server)" \
    $(( $(stat -c %s "$WORK/relay-1.eml") / 1048576 )) $(( idle / 1024 )) $(( peak / 1024 ))
