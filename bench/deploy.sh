#!/usr/bin/env bash
# Deploying one's own app (the Django project of inventory/lab-django.yml)
# on the apps lab server: a full provision from a pristine server, a
# provision with nothing to do, a deploy with nothing new, and a deploy of
# a one-line code change (a new release: upload, the virtualenv of the
# same wheels linked, collectstatic's output linked and migrate skipped,
# their inputs being the live release's, switch, graceful reload, checks),
# and where that deploy's time went (its -v and --json output); then a
# stylesheet edit (collectstatic runs), a new migration (migrate runs) and
# a one-line change with --rebuild (both run, the path before inputs were
# compared).
# Each deploy's release step must say what was planned, and no build may
# have fallen back to running (it says so), so that the slow path cannot
# pass for the fast one. Medians of N runs (default 5;
# pristine provisions: 3).
#
#   bench/deploy.sh [N]     (writes bench/deploy-results.md)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-5}
scripts/host-setup.sh
cargo build --release --locked -q
F=$PWD/target/release/foobar
WORK=/var/lib/foobar/bench/deploy
rm -rf "$WORK" && mkdir -p "$WORK"
cp -r apps/django "$WORK/app"
sed "s|source: ../apps/django|source: $WORK/app|" inventory/lab-django.yml > "$WORK/inventory.yml"
INV=$WORK/inventory.yml
$F -i "$INV" lab up > /dev/null

seconds() { # command... -> wall seconds
  local t0 t1
  t0=$(date +%s.%N)
  "$@" > "$WORK/last.out" 2>&1 || { cat "$WORK/last.out" >&2; echo "bench: $* failed" >&2; exit 1; }
  t1=$(date +%s.%N)
  awk "BEGIN {printf \"%.2f\", $t1 - $t0}"
}

# A deploy: its wall seconds, then its release step's, its handlers' (the
# reload), its checks' and the rest (connection, facts, other steps).
# $1: what the release step must say it did; then deploy's own arguments.
deploy_parts() {
  local t0 t1 said=$1
  shift
  t0=$(date +%s.%N)
  $F -i "$INV" -v --json deploy "$@" > "$WORK/last.json" 2> "$WORK/last.out" || { cat "$WORK/last.out" >&2; echo "bench: deploy failed" >&2; exit 1; }
  t1=$(date +%s.%N)
  python3 - "$WORK/last.json" "$WORK/last.out" "$t0" "$t1" "$said" <<'EOF'
import json, re, sys
steps = [s for h in json.load(open(sys.argv[1]))["hosts"] for s in h["steps"]]
detail = next(s["detail"] for s in steps if s["kind"] == "release")
if detail != sys.argv[5]:
    sys.exit(f"bench: the release step said {detail!r}, not {sys.argv[5]!r}")
if "could not be linked" in open(sys.argv[2]).read():
    sys.exit("bench: the build output could not be linked: the build ran")
def secs(kind):
    return sum(s["elapsed_ms"] for s in steps if s["kind"] == kind) / 1000
checks = sum(int(m) for m in re.findall(r"\] checks: (\d+) ms", open(sys.argv[2]).read())) / 1000
total = float(sys.argv[4]) - float(sys.argv[3])
release, handlers = secs("release"), secs("handler")
print(f"{total:.2f} {release:.2f} {handlers:.2f} {checks:.2f} {total - release - handlers - checks:.2f}")
EOF
}

median() { tr ' ' '\n' | sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

pristine=() noop=() deploy_noop=() change=() release=() handlers=() checks=() rest=() css=() migration=() rebuild=()
BOTH_SKIPPED="deploy and switch current; build: output linked from the live release (inputs unchanged); release command: skipped (inputs unchanged)"
for i in 1 2 3; do
  $F -i "$INV" lab reset apps1 > /dev/null
  pristine+=("$(seconds $F -i "$INV" provision)")
done
for i in $(seq "$N"); do
  noop+=("$(seconds $F -i "$INV" provision)")
  deploy_noop+=("$(seconds $F -i "$INV" deploy)")
  # One line of the template changes: a new release, collectstatic's
  # and migrate's inputs unchanged.
  sed -i "s|<h1>Notes[^<]*</h1>|<h1>Notes $i</h1>|" "$WORK/app/notes/templates/notes/index.html"
  parts=$(deploy_parts "$BOTH_SKIPPED")
  read -r t r h c o <<< "$parts"
  change+=("$t") release+=("$r") handlers+=("$h") checks+=("$c") rest+=("$o")
  # The stylesheet: collectstatic's input.
  echo "/* $i */" >> "$WORK/app/notes/static/notes/notes.css"
  parts=$(deploy_parts "deploy and switch current; release command: skipped (inputs unchanged)")
  css+=("${parts%% *}")
  # A migration with nothing to change in the database: migrate's input.
  prev=$([ "$i" = 1 ] && echo 0001_initial || echo "$(printf '%04d' "$i")_noop")
  printf 'from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n    dependencies = [("notes", "%s")]\n    operations = [migrations.RunSQL("SELECT 1")]\n' "$prev" \
    > "$WORK/app/notes/migrations/$(printf '%04d' $((i + 1)))_noop.py"
  parts=$(deploy_parts "deploy and switch current; build: output linked from the live release (inputs unchanged)")
  migration+=("${parts%% *}")
  # The same one-line change with both run, as every deploy did before
  # their inputs were compared.
  sed -i "s|<h1>Notes[^<]*</h1>|<h1>Notes $i again</h1>|" "$WORK/app/notes/templates/notes/index.html"
  parts=$(deploy_parts "deploy and switch current" --rebuild)
  rebuild+=("${parts%% *}")
done
{
  echo "The Django project of \`inventory/lab-django.yml\` on one lab server (\`bench/deploy.sh $N\`); wall seconds, median (runs)."
  echo
  echo "| run | median s | runs |"
  echo "|---|---|---|"
  echo "| provision, pristine server (packages, MariaDB, wheels, first release) | $(echo "${pristine[*]}" | median) | ${pristine[*]} |"
  echo "| provision, nothing to do | $(echo "${noop[*]}" | median) | ${noop[*]} |"
  echo "| deploy, nothing new | $(echo "${deploy_noop[*]}" | median) | ${deploy_noop[*]} |"
  echo "| deploy, one-line code change | $(echo "${change[*]}" | median) | ${change[*]} |"
  echo "| of which the release step (upload, build, migrate, switch) | $(echo "${release[*]}" | median) | ${release[*]} |"
  echo "| of which the reload (handlers) | $(echo "${handlers[*]}" | median) | ${handlers[*]} |"
  echo "| of which the checks | $(echo "${checks[*]}" | median) | ${checks[*]} |"
  echo "| of which the rest (connection, facts, other steps) | $(echo "${rest[*]}" | median) | ${rest[*]} |"
  echo "| deploy, a stylesheet edited (collectstatic runs) | $(echo "${css[*]}" | median) | ${css[*]} |"
  echo "| deploy, a new migration (migrate runs) | $(echo "${migration[*]}" | median) | ${migration[*]} |"
  echo "| deploy, one-line code change with \`--rebuild\` (both run, as before) | $(echo "${rebuild[*]}" | median) | ${rebuild[*]} |"
} | tee bench/deploy-results.md
