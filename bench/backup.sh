#!/usr/bin/env bash
# Backups measured on the backup lab (inventory/lab-backup.yml): writes
# under load (wrk on /visits: each 2xx commits one increment and reports
# the count), the database server destroyed at a moment of the load (its
# disk made pristine: `foobar lab reset`), then `provision` and `restore
# --at` that moment. Reports the writes acknowledged before it against the
# count restored (lost writes, RPO), the time from the restore's start to
# its checks passing (RTO), and the backup's own time.
#
#   bench/backup.sh     (writes bench/backup-results.md)
# shellcheck source=bench/backup-lab.sh
source "$(dirname "$0")/backup-lab.sh"

t0=$(ms); $F -i $INV backup > "$WORK/backup.out"; t1=$(ms)
backup_s=$(secs $t0 $t1)
size=$(awk '/^db:/ {print $4}' "$WORK/backup.out" | tr -d "(")

# 12 s of writes; the server destroyed 4 to 8 s in (a random moment).
wrk -t2 -c8 -d12s --timeout 2s -s bench/visits.lua http://10.245.0.10/visits > "$WORK/wrk-backup.out" 2>&1 &
load=$!
sleep $((4 + RANDOM % 5))
at=$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)
$F -i $INV lab reset web1 > /dev/null
wait "$load" || true
acked=$(awk '$1 == "acked" {print $2}' "$WORK/wrk-backup.out")
highest=$(awk '$1 == "highest" {print $2}' "$WORK/wrk-backup.out")

t0=$(ms)
$F -i $INV provision > "$WORK/provision-after.out" 2>&1 || true
t1=$(ms)
$F -i $INV restore --yes --at "$at" > "$WORK/restore.out" 2>&1
t2=$(ms)
restored=$($F -i $INV lab ssh web1 "mysql -N -B foobar -e 'SELECT count FROM visits WHERE id = 1'" | tr -d '[:space:]')
lost=$((highest - restored))
provision_s=$(secs $t0 $t1)
restore_s=$(secs $t1 $t2)
replayed=$(grep -o 'binary log replayed: [0-9]* transactions' "$WORK/restore.out" | awk '{print $4}')

{
  echo "# bench/backup.sh: $(date -u +%Y-%m-%dT%H:%MZ), $(git rev-parse --short HEAD)"
  echo
  echo "| measure | value |"
  echo "|---|---|"
  echo "| backup (database $size bytes and uploads), command to done | $backup_s s |"
  echo "| writes acknowledged before the destruction (2xx /visits) | $acked |"
  echo "| highest count acknowledged | $highest |"
  echo "| count restored by \`restore --at\` the destruction | $restored |"
  echo "| acknowledged writes lost | $lost |"
  echo "| transactions replayed from the streamed binary log | ${replayed:-0} |"
  echo "| provision of the pristine server | $provision_s s |"
  echo "| restore --at, command to checks passing (RTO after provision) | $restore_s s |"
} | tee bench/backup-results.md
