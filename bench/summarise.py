"""Medians and ratios from bench/run.sh's samples, as a Markdown table."""

import csv
import statistics
import subprocess
import sys
from collections import defaultdict

samples, runs = sys.argv[1], sys.argv[2]
times, sessions, logins, failed = defaultdict(list), defaultdict(list), defaultdict(list), defaultdict(int)
with open(samples) as f:
    for tool, scenario, _run, secs, sess, status, login in csv.reader(f, delimiter="\t"):
        if status != "ok":
            failed[(tool, scenario)] += 1
        times[(tool, scenario)].append(float(secs))
        sessions[(tool, scenario)].append(int(sess))
        logins[(tool, scenario)].append(int(login))

tools = ["foobar", "pyinfra", "ansible"]
scenarios = [
    ("first", "first run (pristine server)"),
    ("noop", "no-op rerun, new connection"),
    ("noop-kept", "no-op rerun, connection kept from the one before"),
    ("template", "one template changed, new connection"),
]
med = {k: statistics.median(v) for k, v in times.items()}
print(f"Median of {runs} interleaved runs per tool and scenario, same lab server, same job ")
print("(`bench/run.sh`): seconds of wall time, SSH logins and sessions (from the server's sshd log).")
print("foobar and Ansible keep a connection 60 s for the next run by default; pyinfra does not.\n")
print("| scenario | foobar | pyinfra | Ansible | Ansible / foobar | pyinfra / foobar |")
print("|---|---|---|---|---|---|")
for key, label in scenarios:
    cells = []
    for t in tools:
        k = (t, key)
        note = f" ({failed[k]} failed)" if failed[k] else ""
        cells.append(
            f"{med[k]:.2f} s, {int(statistics.median(logins[k]))} logins, "
            f"{int(statistics.median(sessions[k]))} sessions{note}"
        )
    ratio_a = med[("ansible", key)] / med[("foobar", key)]
    ratio_p = med[("pyinfra", key)] / med[("foobar", key)]
    print(f"| {label} | " + " | ".join(cells) + f" | {ratio_a:.1f}x | {ratio_p:.1f}x |")
versions = subprocess.run(
    ["/var/lib/foobar/bench/venv/bin/pip", "list", "--format=freeze"], capture_output=True, text=True
).stdout
wanted = [l for l in versions.splitlines() if l.split("==")[0] in ("ansible", "ansible-core", "pyinfra")]
print(f"\nVersions: {', '.join(wanted)}. foobar's runs include its five end-to-end HTTP checks.")
