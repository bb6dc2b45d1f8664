#!/usr/bin/env bash
# Backups of the HA design measured on the HA lab (inventory/lab-ha.yml:
# a Galera cluster of three, the backup server pulling from db3). Writes
# under load through the floating address (wrk on /visits: each 2xx
# commits one increment and reports the count); the writer (db1) is
# destroyed at a random moment of it (`foobar lab reset`: a pristine disk)
# and the cluster goes on; `provision` brings db1 back (a whole state
# transfer). Then a mistake: the table dropped at T, and `restore --at`
# the second before T onto the cluster. Reports the requests lost to the
# writer's loss, the count restored against the highest acknowledged and
# against what the cluster held at T (every write before T must be back;
# the count is higher by the visits of provision's and the restore's own
# checks and of requests wrk cut off when it stopped), the restore's time
# to its checks passing (RTO) and the backup's own time.
#
#   bench/backup-ha.sh     (writes bench/backup-ha-results.md)
INV=inventory/lab-ha.yml
# shellcheck source=bench/backup-lab.sh
source "$(dirname "$0")/backup-lab.sh"
db() { $F -i $INV lab ssh db2 "mysql -N -B foobar -e \"$1\"" | tr -d '[:space:]'; }

t0=$(ms); $F -i $INV backup > "$WORK/backup-ha.out"; t1=$(ms)
backup_s=$(secs $t0 $t1)
size=$(awk '/^db:/ {print $4}' "$WORK/backup-ha.out" | tr -d "(")

# 16 s of writes; the writer destroyed 4 to 8 s in (a random moment).
wrk -t2 -c8 -d16s --timeout 2s -s bench/visits.lua http://10.249.0.10/visits > "$WORK/wrk-ha.out" 2>&1 &
load=$!
sleep $((4 + RANDOM % 5))
$F -i $INV lab reset db1 > /dev/null
wait "$load" || true
acked=$(awk '$1 == "acked" {print $2}' "$WORK/wrk-ha.out")
highest=$(awk '$1 == "highest" {print $2}' "$WORK/wrk-ha.out")
sent=$(awk '/requests in/ {print $1}' "$WORK/wrk-ha.out")
failed=$((sent - acked))
t0=$(ms)
$F -i $INV provision > "$WORK/provision-ha.out" 2>&1
t1=$(ms)
provision_s=$(secs $t0 $t1)

# The mistake: the table dropped at T, after the load; the restore goes
# to the second before T, after the last acknowledged write.
sleep 2
at=$(date -u -d "@$(($(date +%s) - 1))" +%Y-%m-%dT%H:%M:%SZ)
sleep 1
held=$(db 'SELECT count FROM visits WHERE id = 1')
db 'DROP TABLE visits'
t0=$(ms)
$F -i $INV restore --yes --at "$at" > "$WORK/restore-ha.out" 2>&1
t1=$(ms)
restore_s=$(secs $t0 $t1)
restored=$(db 'SELECT count FROM visits WHERE id = 1')
replayed=$(grep -o 'binary log replayed: [0-9]* transactions' "$WORK/restore-ha.out" | awk '{print $4}')
synced=$(for m in db1 db2 db3; do $F -i $INV lab ssh $m "mysql -N -B -e \"SHOW STATUS LIKE 'wsrep_local_state_comment'\"" | cut -f 2; done | sort | uniq -c | tr -s ' ')

{
  echo "# bench/backup-ha.sh: $(date -u +%Y-%m-%dT%H:%MZ), $(git rev-parse --short HEAD)"
  echo
  echo "| measure | value |"
  echo "|---|---|"
  echo "| backup (database $size bytes from db3, and uploads), command to done | $backup_s s |"
  echo "| requests under load while the writer (db1) was destroyed | $sent |"
  echo "| of which failed (in flight on db1) | $failed |"
  echo "| provision of the pristine db1 (a whole state transfer) | $provision_s s |"
  echo "| highest count acknowledged under load | $highest |"
  echo "| count the cluster held when the table was dropped | $held |"
  echo "| count restored by \`restore --at\` the second before the drop (then the restore's own checks add their visits) | $restored |"
  echo "| acknowledged writes lost | $(( highest > restored ? highest - restored : 0 )) |"
  echo "| committed writes lost (held at the drop, not restored) | $(( held > restored ? held - restored : 0 )) |"
  echo "| transactions replayed from the streamed binary log | ${replayed:-0} |"
  echo "| restore --at onto the cluster, command to checks passing (RTO) | $restore_s s |"
  echo "| members after the restore | $synced |"
} | tee bench/backup-ha-results.md
