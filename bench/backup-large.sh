#!/usr/bin/env bash
# Backups of a 1 GB database on the backup lab (inventory/lab-backup.yml):
# the database grown to about 1 GB (a table of random rows beside the
# sample app's), then
# - a snapshot with the site idle: its time, and the CPU it costs the
#   database server (every process the backup starts there: mariadb-backup,
#   sshd, sudo, the gate; their /proc/PID/stat every 0.2 s, the sampler's
#   own session left out);
# - the site's write throughput (/visits, each 2xx one committed
#   increment, wrk -c8) for 10 s without a snapshot, then while one runs;
# - the RTO of that database: `restore --yes` of the newest snapshot, the
#   command's start to its checks passing.
#
#   bench/backup-large.sh [MB]     (default 1024; writes bench/backup-large-results.md)
# shellcheck source=bench/backup-lab.sh
source "$(dirname "$0")/backup-lab.sh"
MB=${1:-1024}
on_db() { $F -i $INV lab ssh web1 "$1"; }
visits() { on_db "mariadb -N -B foobar -e 'SELECT count FROM visits WHERE id = 1'" | tr -d '[:space:]'; }
db_bytes() { on_db "mariadb -N -B -e \"SELECT SUM(data_length + index_length) FROM information_schema.tables WHERE table_schema = 'foobar'\"" | tr -d '[:space:]'; }

# Rows of ~1 KB of random bytes (base64: what compresses as little as
# real data), doubled until the database holds MB megabytes.
on_db "mariadb foobar -e 'CREATE TABLE IF NOT EXISTS bench_rows (id BIGINT AUTO_INCREMENT PRIMARY KEY, body TEXT NOT NULL) ENGINE=InnoDB'"
[ "$(on_db "mariadb -N -B foobar -e 'SELECT COUNT(*) FROM bench_rows'" | tr -d '[:space:]')" != 0 ] ||
  on_db "mariadb foobar -e 'INSERT INTO bench_rows (body) VALUES (TO_BASE64(RANDOM_BYTES(768)))'"
while [ "$(db_bytes)" -lt $((MB * 1024 * 1024)) ]; do
  on_db "mariadb foobar -e 'INSERT INTO bench_rows (body) SELECT TO_BASE64(RANDOM_BYTES(768)) FROM bench_rows LIMIT 262144; ANALYZE TABLE bench_rows'" > /dev/null
done
size=$(db_bytes)

# The snapshot alone, the site idle: time, and the CPU of what it starts
# on the database server (processes born after it began).
on_db "ps -eo pid= | sort -n | tail -1" | tr -d "[:space:]" > "$WORK/pid-before"
on_db "setsid sh -c 'while sleep 0.2; do cat /proc/[0-9]*/stat 2>/dev/null | awk -v f=$(cat "$WORK/pid-before") -v s=\$\$ \"\\\$1 > f && \\\$6 != s { print \\\$1, \\\$14 + \\\$15 }\"; done' > /run/backup-cpu.txt 2>&1 < /dev/null & echo \$! > /run/backup-cpu.pid"
t0=$(ms); $F -i $INV backup > "$WORK/backup-large.out"; t1=$(ms)
on_db "kill \$(cat /run/backup-cpu.pid)"
cpu=$(on_db "awk '{ if (\$2 > t[\$1]) t[\$1] = \$2 } END { s = 0; for (p in t) s += t[p]; printf \"%.1f\", s / 100 }' /run/backup-cpu.txt")
backup_s=$(secs $t0 $t1)

# Writes per second: 10 s without a snapshot, then during one.
wrk -t2 -c8 -d600s --timeout 5s -s bench/visits.lua http://10.245.0.10/visits > "$WORK/wrk-large.out" 2>&1 &
load=$!
sleep 2
v0=$(visits); t0=$(ms); sleep 10; v1=$(visits); t1=$(ms)
quiet=$(awk "BEGIN {printf \"%.0f\", ($v1 - $v0) * 1000 / ($t1 - $t0)}")
v0=$(visits); t0=$(ms); $F -i $INV backup > /dev/null; v1=$(visits); t1=$(ms)
during=$(awk "BEGIN {printf \"%.0f\", ($v1 - $v0) * 1000 / ($t1 - $t0)}")
loaded_s=$(secs $t0 $t1)
kill "$load"; wait "$load" || true

# RTO: the newest snapshot back, command start to checks passing.
t0=$(ms); $F -i $INV restore --yes > "$WORK/restore-large.out" 2>&1; t1=$(ms)
restore_s=$(secs $t0 $t1)
on_db "rm -rf /var/lib/mysql.before-restore-*"

{
  echo "# bench/backup-large.sh $MB: $(date -u +%Y-%m-%dT%H:%MZ), $(git rev-parse --short HEAD)"
  echo
  echo "| measure | value |"
  echo "|---|---|"
  echo "| database size (InnoDB data and indexes) | $((size / 1024 / 1024)) MB |"
  echo "| snapshot, site idle: command to done | $backup_s s |"
  echo "| CPU on the database server for it (processes it started) | $cpu s |"
  echo "| writes/s, 8 clients, no snapshot (10 s) | $quiet |"
  echo "| writes/s, 8 clients, during a snapshot ($loaded_s s) | $during |"
  echo "| restore --yes of the newest snapshot: command to checks passing (RTO) | $restore_s s |"
} | tee bench/backup-large-results.md
