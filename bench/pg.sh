#!/usr/bin/env bash
# The PostgreSQL state backend against the local store, in the same run:
# first apply and no-op plan of N `strata_data` instances (bench/gen.py),
# each shape on both backends, one after the other.
#
#   eval "$(bash scripts/postgres-up.sh)"   # or scripts/test-env-up.sh
#   bash bench/pg.sh                        # N = 10000, flat + layered
#   BENCH_SIZES="1000 10000" BENCH_SHAPES=flat bash bench/pg.sh
#   BIN=target/release/strata bash bench/pg.sh   # no build
#
# Prints a markdown table; each pg case uses a schema of its own.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
sizes="${BENCH_SIZES:-10000}"
shapes="${BENCH_SHAPES:-flat layered}"
: "${STRATA_PG_CONN_STR:?run eval \"\$(bash scripts/postgres-up.sh)\" first}"
command -v /usr/bin/time >/dev/null || apt-get install -y time >/dev/null

strata="${BIN:-}"   # BIN=path/to/strata skips the build
if [[ -z "$strata" ]]; then
    echo "building release..." >&2
    (cd "$root" && cargo build --release -q)
    strata="$root/target/release/strata"
fi
work="$(mktemp -d "${TMPDIR:-/tmp}/strata-bench-pg.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# measure NAME DIR ARGS... -> m_secs, m_kib; fails the run on a non-zero exit
measure() {
    local name="$1" dir="$2"; shift 2
    /usr/bin/time -f '%e %M' -o "$dir/../$name.time" "$strata" -chdir "$dir" "$@" \
        >"$dir/../$name.out" 2>"$dir/../$name.err" </dev/null ||
        { echo "$name failed:" >&2; tail -n 5 "$dir/../$name.err" >&2; exit 1; }
    read -r m_secs m_kib < <(tail -n 1 "$dir/../$name.time")
}

# Transactions committed in the database so far (pg_stat_database).
commits() {
    psql "$STRATA_PG_CONN_STR" -qtAc "SELECT pg_stat_clear_snapshot(); SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()" | tail -n 1
}

echo "| N | shape | backend | first apply s | no-op plan s | peak RSS MiB | apply transactions |"
echo "|---:|:---|:---|---:|---:|---:|---:|"
for n in $sizes; do
    for shape in $shapes; do
        for backend in local pg; do
            cfg="$work/$n-$shape-$backend/config"
            mkdir -p "$cfg"
            python3 "$here/gen.py" "$cfg" "$n" "$shape"
            if [[ $backend == pg ]]; then
                schema="bench_${shape}_${n}_$(date +%s%N | cut -c1-16)"
                printf 'terraform {\n  backend "pg" {\n    schema_name = "%s"\n  }\n}\n' "$schema" >"$cfg/backend.strata.hcl"
            fi
            [[ $backend == pg ]] && before="$(commits)"
            measure apply "$cfg" apply -auto-approve
            a="$m_secs" peak="$m_kib" txns=""
            # The statistics collector reports with a delay of up to a second.
            [[ $backend == pg ]] && sleep 1 && txns="$(( $(commits) - before ))"
            measure plan "$cfg" plan
            grep -q "No changes" "$cfg/../plan.out" "$cfg/../plan.err" || { echo "the plan after apply is not a no-op" >&2; exit 1; }
            p="$m_secs"
            (( m_kib > peak )) && peak=$m_kib
            echo "| $n | $shape | $backend | $a | $p | $(( peak / 1024 )) | $txns |"
            if [[ $backend == pg ]]; then
                psql "$STRATA_PG_CONN_STR" -qc "SET client_min_messages = warning; DROP SCHEMA $schema CASCADE" >&2
            fi
        done
    done
done
