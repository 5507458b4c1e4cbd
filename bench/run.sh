#!/usr/bin/env bash
# Benchmark harness for strata (and Terraform side by side).
#
#   bash bench/run.sh                             # everything below, defaults
#   BENCH_SIZES="1000 10000" bash bench/run.sh    # realistic-shape sizes
#   BENCH_COUNT_SIZES="100000" bash bench/run.sh  # count-shape sizes ("" = none)
#   BENCH_SHAPES="flat layered"                   # count shapes to run
#   BENCH_TERRAFORM_SIZES="1000 3000"             # Terraform comparison ("" = none)
#   BENCH_TERRAFORM_STATE=generated               # Terraform's state from gen.py --state
#                                                 # instead of its first apply (hours at 3k)
#   BENCH_RUNS=3                                  # runs per step; the median is reported
#   BENCH_LARGE_RUNS=1                            # runs per step from 100,000 instances on
#   BENCH_TIMEOUT=900                             # per-step limit in seconds
#   BENCH_KEEP=1                                  # keep the generated dirs and logs
#   STRATA=path/to/strata                         # measure this binary, do not build
#
# Steps, each timed with GNU time (wall seconds, CPU seconds, peak RSS):
#   realistic: validate, first apply (from empty state, journal durable),
#              no-op plan, one-change plan, fmt -check of the root file
#   count:     validate, first apply, no-op plan
# Prints markdown tables and writes them to bench/results.md.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
sizes="${BENCH_SIZES-1000 10000 100000}"
count_sizes="${BENCH_COUNT_SIZES-1000 10000 100000}"
shapes="${BENCH_SHAPES:-flat layered}"
tf_sizes="${BENCH_TERRAFORM_SIZES-1000 3000}"
tf_state="${BENCH_TERRAFORM_STATE:-apply}"
base_runs="${BENCH_RUNS:-3}"
large_runs="${BENCH_LARGE_RUNS:-$base_runs}"
runs=$base_runs
runs_for() { if (( $1 >= 100000 )); then runs=$large_runs; else runs=$base_runs; fi; }
limit="${BENCH_TIMEOUT:-900}"
results="$here/results.md"

if ! command -v /usr/bin/time >/dev/null 2>&1; then
    echo "installing GNU time" >&2
    apt-get install -y time >/dev/null
fi
command -v python3 >/dev/null || { echo "python3 is required" >&2; exit 1; }

if [[ -z "${STRATA:-}" ]]; then
    echo "building release..." >&2
    (cd "$root" && cargo build --release -q)
    STRATA="$root/target/release/strata"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/strata-bench.XXXXXX")"
if [[ -z "${BENCH_KEEP:-}" ]]; then
    trap 'rm -rf "$work"' EXIT
else
    echo "keeping work dir $work" >&2
fi

# once LOG CMD... -> one timed run; sets t_wall t_cpu t_kib t_rc
once() {
    local log="$1"; shift
    t_rc=0
    /usr/bin/time -f '%e %U %S %M' -o "$log.time" timeout -k 10 "$limit" "$@" >"$log.out" 2>"$log.err" </dev/null || t_rc=$?
    read -r t_wall t_user t_sys t_kib < <(tail -n 1 "$log.time")
    t_cpu=$(awk -v u="$t_user" -v s="$t_sys" 'BEGIN { printf "%.2f", u + s }')
}

# median of the numbers given
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

# measure NAME PREPARE CHECK CMD... -> runs CMD $runs times (PREPARE before
# each, CHECK after each on $log); sets m_cell ("wall (cpu)" medians or a
# failure) and m_kib (peak over the runs).
measure() {
    local name="$1" prepare="$2" check="$3"; shift 3
    local walls=() cpus=() i
    m_kib=0 m_cell=""
    for ((i = 1; i <= runs; i++)); do
        eval "$prepare"
        log="$case_dir/$name.$i"
        once "$log" "$@"
        (( t_kib > m_kib )) && m_kib=$t_kib
        if [[ $t_rc -eq 124 || $t_rc -eq 137 ]]; then m_cell=">${t_wall} (timeout)"; break; fi
        if ! eval "$check"; then
            m_cell="FAIL(rc $t_rc): $(tail -n 2 "$log.err" "$log.out" | tr '\n' ' ' | cut -c1-200)"
            break
        fi
        walls+=("$t_wall") cpus+=("$t_cpu")
    done
    if [[ -z "$m_cell" ]]; then
        m_cell="$(median "${walls[@]}") ($(median "${cpus[@]}"))"
    fi
}

mib() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }
per_instance() { awk -v k="$1" -v n="$2" 'BEGIN { printf "%.1f", k / n }'; }

ok='[[ $t_rc -eq 0 ]]'
noop='[[ $t_rc -eq 0 ]] && grep -q "No changes" "$log.out" "$log.err"'
one_change='[[ $t_rc -eq 0 ]] && grep -q "0 to add, 1 to change, 0 to destroy" "$log.out"'
fmt_clean='[[ $t_rc -eq 0 ]]'
fresh_state='rm -rf "$cfg/.strata"'
tf_fresh_state='rm -f "$cfg/terraform.tfstate" "$cfg/terraform.tfstate.backup"'
tf_noop='[[ $t_rc -eq 0 ]] && grep -q "No changes" "$log.out"'
tf_one_change='[[ $t_rc -eq 0 ]] && grep -q "0 to add, 1 to change, 0 to destroy" "$log.out"'

real_rows=() count_rows=() tf_rows=()
real_header="| instances | validate s | no-op plan s | one-change plan s | first apply s | fmt -check s | peak RSS MiB | KiB / instance |"
real_sep="|---:|---:|---:|---:|---:|---:|---:|---:|"
count_header="| N | shape | validate s | first apply s | no-op plan s | peak RSS MiB |"
count_sep="|---:|:---|---:|---:|---:|---:|"
tf_header="| instances | tool | validate s | no-op plan s | one-change plan s | first apply s | peak RSS MiB |"
tf_sep="|---:|:---|---:|---:|---:|---:|---:|"

# The realistic shape with strata.
for n in $sizes; do
    runs_for "$n"
    case_dir="$work/real-$n"
    cfg="$case_dir/config"
    mkdir -p "$cfg"
    python3 "$here/gen.py" "$cfg" "$n" realistic
    peak=0
    measure validate : "$ok" "$STRATA" -chdir "$cfg" validate; v="$m_cell"; (( m_kib > peak )) && peak=$m_kib
    measure apply "$fresh_state" "$ok" "$STRATA" -chdir "$cfg" apply -auto-approve; a="$m_cell"; (( m_kib > peak )) && peak=$m_kib
    measure plan : "$noop" "$STRATA" -chdir "$cfg" plan; p="$m_cell"; plan_kib=$m_kib; (( m_kib > peak )) && peak=$m_kib
    python3 "$here/gen.py" "$cfg" "$n" realistic --change
    measure change : "$one_change" "$STRATA" -chdir "$cfg" plan; c="$m_cell"; (( m_kib > peak )) && peak=$m_kib
    python3 "$here/gen.py" "$cfg" "$n" realistic
    measure fmt : "$fmt_clean" "$STRATA" fmt -check "$cfg/main.strata.hcl"; f="$m_cell"
    row="| $n | $v | $p | $c | $a | $f | $(mib "$peak") | $(per_instance "$plan_kib" "$n") |"
    real_rows+=("$row")
    echo "$row" >&2
done

# The count shapes.
for n in $count_sizes; do
    runs_for "$n"
    for shape in $shapes; do
        case_dir="$work/$n-$shape"
        cfg="$case_dir/config"
        mkdir -p "$cfg"
        python3 "$here/gen.py" "$cfg" "$n" "$shape"
        peak=0
        measure validate : "$ok" "$STRATA" -chdir "$cfg" validate; v="$m_cell"; (( m_kib > peak )) && peak=$m_kib
        measure apply "$fresh_state" "$ok" "$STRATA" -chdir "$cfg" apply -auto-approve; a="$m_cell"; (( m_kib > peak )) && peak=$m_kib
        measure plan : "$noop" "$STRATA" -chdir "$cfg" plan; p="$m_cell"; (( m_kib > peak )) && peak=$m_kib
        row="| $n | $shape | $v | $a | $p | $(mib "$peak") |"
        count_rows+=("$row")
        echo "$row" >&2
    done
done

# Terraform beside strata on the same realistic configuration.
if [[ -n "$tf_sizes" ]] && command -v terraform >/dev/null; then
    export TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1
    for n in $tf_sizes; do
        runs_for "$n"
        for tool in strata terraform; do
            case_dir="$work/tf-$tool-$n"
            cfg="$case_dir/config"
            mkdir -p "$cfg"
            peak=0
            if [[ $tool == terraform ]]; then
                python3 "$here/gen.py" "$cfg" "$n" realistic --terraform
                terraform -chdir="$cfg" init -input=false >"$case_dir/init.log" 2>&1
                tf=(terraform -chdir="$cfg")
                measure validate : "$ok" "${tf[@]}" validate -no-color; v="$m_cell"; (( m_kib > peak )) && peak=$m_kib
                if [[ $tf_state == generated ]]; then
                    # The state its apply would leave, written directly; the
                    # no-op plan below proves it matches the configuration.
                    python3 "$here/gen.py" "$cfg" "$n" realistic --terraform --state
                    a="(state generated)"
                else
                    # One apply: Terraform's first apply takes minutes at these sizes.
                    runs_saved=$runs; runs=1
                    measure apply "$tf_fresh_state" "$ok" "${tf[@]}" apply -auto-approve -input=false -no-color; a="$m_cell"; (( m_kib > peak )) && peak=$m_kib
                    runs=$runs_saved
                fi
                measure plan : "$tf_noop" "${tf[@]}" plan -input=false -no-color; p="$m_cell"; (( m_kib > peak )) && peak=$m_kib
                python3 "$here/gen.py" "$cfg" "$n" realistic --terraform --change
                measure change : "$tf_one_change" "${tf[@]}" plan -input=false -no-color; c="$m_cell"; (( m_kib > peak )) && peak=$m_kib
            else
                python3 "$here/gen.py" "$cfg" "$n" realistic
                measure validate : "$ok" "$STRATA" -chdir "$cfg" validate; v="$m_cell"; (( m_kib > peak )) && peak=$m_kib
                measure apply "$fresh_state" "$ok" "$STRATA" -chdir "$cfg" apply -auto-approve; a="$m_cell"; (( m_kib > peak )) && peak=$m_kib
                measure plan : "$noop" "$STRATA" -chdir "$cfg" plan; p="$m_cell"; (( m_kib > peak )) && peak=$m_kib
                python3 "$here/gen.py" "$cfg" "$n" realistic --change
                measure change : "$one_change" "$STRATA" -chdir "$cfg" plan; c="$m_cell"; (( m_kib > peak )) && peak=$m_kib
            fi
            row="| $n | $tool | $v | $p | $c | $a | $(mib "$peak") |"
            tf_rows+=("$row")
            echo "$row" >&2
        done
    done
fi

{
    echo "# strata benchmark results"
    echo
    echo "Generated by \`bench/run.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'),"
    echo "$(nproc) cores, $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end,"
    echo "commit $(cd "$root" && git rev-parse --short HEAD 2>/dev/null || echo unknown), $base_runs runs per step ($large_runs from 100,000 instances on)."
    echo "Cells: median wall seconds (median CPU seconds, user + system)."
    if (( ${#real_rows[@]} )); then
        echo
        echo "## Realistic shape (distinct blocks, references, locals, for_each over objects, a module called 10 times)"
        echo
        echo "$real_header"
        echo "$real_sep"
        printf '%s\n' "${real_rows[@]}"
    fi
    if (( ${#count_rows[@]} )); then
        echo
        echo "## Count shapes (10 blocks with count = N/10)"
        echo
        echo "$count_header"
        echo "$count_sep"
        printf '%s\n' "${count_rows[@]}"
    fi
    if (( ${#tf_rows[@]} )); then
        echo
        echo "## Side by side with Terraform $(terraform version 2>/dev/null | head -n 1 | awk '{ print $2 }') (terraform_data)"
        echo
        echo "$tf_header"
        echo "$tf_sep"
        printf '%s\n' "${tf_rows[@]}"
    fi
} >"$results"
cat "$results"
echo "results written to $results" >&2
