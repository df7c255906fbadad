#!/usr/bin/env bash
# Regression input for a crash the fuzzers cannot reach (libFuzzer's -max_len is 4 KB): a form
# key with many dots, `a.a.a.…=1`, builds a query::FormTree as deep as the key has segments, and
# dropping it recurses once per level (drop_in_place<FormTree> → BTreeMap drop → …).
#   deep_form.sh fuzz   — runs fuzz_query on a 400 KB input (built by bench/fuzz.sh): ASan stack-overflow
#   deep_form.sh <port> — POSTs a 40 KB ec2 form to an emulator on 127.0.0.1:<port>; on f0993b4/73f63a5
#                         the process dies: "thread 'tokio-rt-worker' has overflowed its stack"
set -euo pipefail
cd "$(dirname "$0")/../.."
if [[ ${1:-fuzz} == fuzz ]]; then
  f=$(mktemp)
  python3 -c "import sys; sys.stdout.buffer.write(b'\x09' + b'a.' * 200000 + b'=1')" >"$f"
  fuzz/target/x86_64-unknown-linux-gnu/release/fuzz_query "$f" 2>&1 | grep -E 'ERROR|SUMMARY|#2[0-9] ' | head -12
  rm -f "$f"
else
  python3 -c "import sys; sys.stdout.buffer.write(b'Action=DescribeVpcs&Version=2016-11-15&' + b'a.' * 20000 + b'=1')" |
    curl -sS -m 10 -o /dev/null -w 'HTTP %{http_code}\n' -H 'Content-Type: application/x-www-form-urlencoded' \
      --data-binary @- "http://127.0.0.1:$1/" || echo "no answer: the emulator died?"
fi
