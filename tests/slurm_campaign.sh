#!/usr/bin/env bash
# slurm_campaign.sh - long campaigns on a local one-node Slurm
# (../shared/scripts/slurm-local-up.sh): a --deadline stop and the
# follow-on jobs of slurm/single-node.sbatch, and the deadline found from
# the job's own time limit.  Needs root.  Prints "N passed, N failed".
#   1. chain: 30 tasks of 2 s on 2 workers, each job stopping at
#      --deadline +16s: no two jobs can run them all; the chain of jobs the
#      script submits itself ends complete, every task exactly once.
#   2. walltime: a job with --time=1 and tasks of 3 s: gpudispatch finds the
#      job's end with squeue, stops starting tasks before it, exits 3 (not
#      killed by the time limit); GD_MAX_CHAIN=1: no follow-on job.
#   GD_BUILD_DIR, GD_SHARED, GD_SLURM_KEEP=1: as in slurm_test.sh
set -uo pipefail

GD_SLURM_WORK=gd-campaign
. "$(dirname "$0")/slurm_lib.sh"

# ids of the records with status ok, sorted, one line
ok_ids() { sed -n 's/^{"id":\([0-9]*\),"status":"ok".*/\1/p' "$1" | sort -n | tr '\n' ' ' | sed 's/ $//'; }
all_ids() { sed -n 's/^{"id":\([0-9]*\),.*/\1/p' "$1" | sort -n | tr '\n' ' ' | sed 's/ $//'; }
res=(--ntasks=3 --gres=gpu:2 --cpus-per-task=1)

# ------------------------------------------------------------ 1. the chain
seq 1 30 | sed 's/.*/sleep 2/' >chain.txt
t0=$(date +%s)
chain=$(GD_TASKS=$WORK/chain.txt GD_RESULTS=$WORK/chain.jsonl GD_LAUNCHER=mpirun GD_MAX_CHAIN=5 \
	GD_OPTS="--deadline +16s --deadline-margin 2" GD_SBATCH_OPTS="--output=$WORK/chain-%j.out" \
	sbatch --parsable -J gd-chain -o "$WORK/chain-%j.out" --time=5 "${res[@]}" \
	"$SRC/slurm/single-node.sbatch" 2>&1)
[[ "$chain" =~ ^[0-9]+$ ]] || ko "chain: sbatch failed: $chain"

# ------------------------------------------------------------ 2. the job's own time limit
seq 1 60 | sed 's/.*/sleep 3/' >wall.txt
# the script's --signal=B:USR1@120 would drain a 1-minute job at once: a
# signal the batch shell ignores takes its place, so that only the
# deadline gpudispatch found stops the run
wall=$(GD_TASKS=$WORK/wall.txt GD_RESULTS=$WORK/wall.jsonl GD_LAUNCHER=mpirun GD_MAX_CHAIN=1 \
	sbatch --parsable -J gd-wall -o "$WORK/wall.out" --time=1 --signal=B:URG@1 "${res[@]}" \
	"$SRC/slurm/single-node.sbatch" 2>&1)
[[ "$wall" =~ ^[0-9]+$ ]] || ko "walltime: sbatch failed: $wall"

end=$(($(date +%s) + 200))
while [ "$(date +%s)" -lt "$end" ] && [ -n "$(squeue -h -n gd-chain,gd-wall -o %i 2>/dev/null)" ]; do
	sleep 1
done
[ -z "$(squeue -h -n gd-chain,gd-wall -o %i 2>/dev/null)" ] ||
	ko "jobs still there after 200 s: $(squeue -h -o '%i %j %T %R' | tr '\n' ';')"

# the chain
outs=("$WORK"/chain-*.out)
n_jobs=${#outs[@]}
want=$(seq -s ' ' 0 29)
[ "$(all_ids chain.jsonl)" = "$want" ] && ok "chain: every task exactly once in the results file" ||
	ko "chain: ids '$(all_ids chain.jsonl)'"
[ "$(ok_ids chain.jsonl)" = "$want" ] && ok "chain: all 30 ok" || ko "chain: ok ids '$(ok_ids chain.jsonl)'"
if [ "$n_jobs" -ge 3 ] && [ "$n_jobs" -le 5 ]; then
	ok "chain: $n_jobs jobs (at most 14 tasks fit in one), $(($(date +%s) - t0)) s"
else
	ko "chain: $n_jobs jobs"
fi
last=$(ls -v "$WORK"/chain-*.out | tail -1)
n_follow=$(cat "$WORK"/chain-*.out | grep -c 'submitted job')
if grep -q 'every task succeeded' "$last" && [ "$n_follow" = $((n_jobs - 1)) ]; then
	ok "chain: each job but the last submitted the next; the last ended with every task done"
else
	ko "chain: $n_follow follow-on jobs for $n_jobs; last: $(tail -3 "$last" | tr '\n' ' ')"
fi
stops=$(cat "$WORK"/chain-*.out | grep -c '^gpudispatch: deadline:')
[ "$stops" = $((n_jobs - 1)) ] && ok "chain: every job but the last stopped at its deadline" ||
	ko "chain: $stops deadline stops: $(grep -h 'gpudispatch' "$WORK"/chain-*.out | tr '\n' ';')"

# the job's own time limit
if grep -q "Slurm job $wall ends at .* (squeue)" wall.out; then
	ok "walltime: the deadline is the job's end, from squeue"
else
	ko "walltime: no deadline from Slurm: $(grep gpudispatch wall.out | tr '\n' ';')"
fi
state=$(scontrol show job "$wall" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')
ec=$(scontrol show job "$wall" 2>/dev/null | sed -n 's/.* ExitCode=\([0-9]*\):.*/\1/p')
held=$(sed -n 's/^gpudispatch: deadline: .*, \([0-9]*\) held back.*/\1/p' wall.out)
if [ "$ec" = 3 ] && [ "$state" != TIMEOUT ] && [ "${held:-0}" -gt 0 ]; then
	ok "walltime: stopped itself before the limit: exit 3, $held tasks held back"
else
	ko "walltime: state $state exit $ec held '${held}': $(tail -5 wall.out | tr '\n' ' ')"
fi
n=$(grep -c . wall.jsonl 2>/dev/null)
[ "${n:-0}" -gt 0 ] && [ "$(ok_ids wall.jsonl)" = "$(seq -s ' ' 0 $((n - 1)))" ] && ok "walltime: $n tasks ok, none cut off" ||
	ko "walltime: ids $(all_ids wall.jsonl) ok $(ok_ids wall.jsonl)"
grep -q 'no follow-on job' wall.out && ok "walltime: GD_MAX_CHAIN=1: no follow-on job" ||
	ko "walltime: $(grep -i 'follow-on\|submitted' wall.out)"
# the limit: its start plus the minute (EndTime is when it ended)
wall_start=$(scontrol show job "$wall" 2>/dev/null | sed -n 's/.* StartTime=\([^ ]*\).*/\1/p')
wall_end=$(($(date -d "$wall_start" +%s 2>/dev/null || echo 0) + 60))
last_end=$(sed -n 's/.*"end":\([0-9.]*\),.*/\1/p' wall.jsonl | sort -n | tail -1)
if [ -n "$wall_end" ] && [ -n "$last_end" ]; then
	echo "# walltime: the last task ended $(awk -v a="$wall_end" -v b="$last_end" 'BEGIN{printf "%.1f", a-b}') s before the job's end (tasks of 3 s, margin 5 s), $held held back"
fi
finish
