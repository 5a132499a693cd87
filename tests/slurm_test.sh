#!/usr/bin/env bash
# slurm_test.sh - run slurm/single-node.sbatch and slurm/multi-node.sbatch for
# real on a local one-node Slurm (../shared/scripts/slurm-local-up.sh with 8
# fake GPUs and a fake 2-socket node), with srun --mpi=pmix and with mpirun,
# and assert on each job's results file: every task exactly once, all ok.
# Then interrupt a job the way --signal=B:USR1@120 does (SIGUSR1 to the batch
# shell only) and check that it drains, exits 3 and a second job finishes
# exactly the rest.  Needs root.  Prints "N passed, N failed".
#   GD_BUILD_DIR   the build tree with the gpudispatch binary [SRC/build]
#   GD_SHARED      the shared dir with scripts/ and topologies/ [SRC/../shared]
#   GD_SLURM_KEEP=1  leave the local Slurm running afterwards
set -uo pipefail

. "$(dirname "$0")/slurm_lib.sh"
# each job here is checked alone: no follow-on jobs (tests/slurm_campaign.sh tests those)
export GD_MAX_CHAIN=1

wait_jobs() { # timeout_s jobid...
	local end=$(($(date +%s) + $1))
	shift
	while [ "$(date +%s)" -lt "$end" ]; do
		[ -z "$(squeue -h -j "$(
			IFS=,
			echo "$*"
		)" -o %i 2>/dev/null)" ] && return 0
		sleep 0.3
	done
	return 1
}
job_state() { scontrol show job "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p'; }
job_exit() { scontrol show job "$1" 2>/dev/null | sed -n 's/.* ExitCode=\([0-9]*\):.*/\1/p'; }
ids() { sed -n 's/^{"id":\([0-9]*\),.*/\1/p' "$1" | sort -n | tr '\n' ' ' | sed 's/ $//'; }

# ---------------------------------------------------------------- four jobs
seq 1 16 | sed 's/^/task-/' >tasks.txt
want=$(seq -s ' ' 0 15)
declare -A jobs
for script in single-node multi-node; do
	for launcher in srun mpirun; do
		name=$script-$launcher
		# small resources for the one fake node: 2 workers on 2 GPUs each job
		if [ "$script" = single-node ]; then res=(--ntasks=3 --gres=gpu:2 --cpus-per-task=1)
		else res=(--nodes=1 --ntasks-per-node=2 --gres=gpu:2 --cpus-per-task=1); fi
		jid=$(GD_TASKS=$WORK/tasks.txt GD_RESULTS=$WORK/$name.jsonl GD_LAUNCHER=$launcher \
			GD_OPTS="--timeout 60" sbatch --parsable -J "gd-$name" -o "$WORK/$name.out" \
			--time=5 "${res[@]}" "$SRC/slurm/$script.sbatch" bash "$SRC/tests/cli_task.sh" {} 2>&1)
		if [[ "$jid" =~ ^[0-9]+$ ]]; then jobs[$name]=$jid; else ko "$name: sbatch failed: $jid"; fi
	done
done
wait_jobs 90 "${jobs[@]}" || ko "jobs still running after 90 s: $(squeue -h -o '%i %j %T %R' | tr '\n' ';')"
for name in "${!jobs[@]}"; do
	jid=${jobs[$name]}
	st=$(job_state "$jid")
	if [ "$st" = COMPLETED ]; then ok "$name: job $jid completed"; else
		ko "$name: job $jid state ${st:-unknown}: $(tail -5 "$WORK/$name.out" 2>/dev/null | tr '\n' ' ')"
	fi
	if [ "$(ids "$WORK/$name.jsonl" 2>/dev/null)" = "$want" ]; then
		ok "$name: every task exactly once in the results file"
	else
		ko "$name: results ids '$(ids "$WORK/$name.jsonl" 2>/dev/null)'"
	fi
	n_ok=$(grep -c '"status":"ok"' "$WORK/$name.jsonl" 2>/dev/null)
	[ "$n_ok" = 16 ] && ok "$name: all 16 ok" || ko "$name: $n_ok of 16 ok"
done

# ---------------------------------------------------------------- time-limit warning
seq 1 40 | sed 's/.*/sleep 0.5/' >slow.txt
declare -A sj
for launcher in mpirun srun; do
	jid=$(GD_TASKS=$WORK/slow.txt GD_RESULTS=$WORK/sig-$launcher.jsonl GD_LAUNCHER=$launcher \
		GD_OPTS="--window 1" sbatch --parsable -J "gd-sig-$launcher" -o "$WORK/sig-$launcher.out" \
		--time=5 --ntasks=3 --gres=gpu:2 --cpus-per-task=1 \
		"$SRC/slurm/single-node.sbatch" bash "$SRC/tests/cli_task.sh" {} 2>&1)
	[[ "$jid" =~ ^[0-9]+$ ]] && sj[$launcher]=$jid || ko "signal/$launcher: sbatch failed: $jid"
done
# once tasks are finishing, do what --signal=B:USR1@120 does: USR1 to the batch shell only
for launcher in "${!sj[@]}"; do
	for _ in $(seq 100); do
		[ -s "$WORK/sig-$launcher.jsonl" ] && break
		sleep 0.2
	done
	scancel --batch --signal=USR1 "${sj[$launcher]}"
done
wait_jobs 60 "${sj[@]}" || ko "signalled jobs still running after 60 s"
for launcher in "${!sj[@]}"; do
	jid=${sj[$launcher]}
	n=$(grep -c . "$WORK/sig-$launcher.jsonl" 2>/dev/null)
	ec=$(job_exit "$jid")
	if [ "$ec" = 3 ] && grep -q 'interrupted' "$WORK/sig-$launcher.out"; then
		ok "signal/$launcher: drained and exited 3 (resumable) after $n of 40 tasks"
	else
		ko "signal/$launcher: job $jid exit ${ec:-?} after $n tasks: $(tail -4 "$WORK/sig-$launcher.out" | tr '\n' ' ')"
	fi
	[ "${n:-0}" -lt 40 ] && ok "signal/$launcher: stopped early" || ko "signal/$launcher: ran all 40 tasks"
done
# resubmit the mpirun one: it finishes exactly the rest
jid=$(GD_TASKS=$WORK/slow.txt GD_RESULTS=$WORK/sig-mpirun.jsonl GD_LAUNCHER=mpirun \
	GD_OPTS="--window 4" sbatch --parsable -J gd-resume -o "$WORK/resume.out" --time=5 \
	--ntasks=5 --gres=gpu:4 --cpus-per-task=1 \
	"$SRC/slurm/single-node.sbatch" bash "$SRC/tests/cli_task.sh" {} 2>&1)
wait_jobs 60 "$jid" || ko "resume job still running after 60 s"
if [ "$(job_state "$jid")" = COMPLETED ] && [ "$(ids "$WORK/sig-mpirun.jsonl")" = "$(seq -s ' ' 0 39)" ]; then
	ok "resubmitted job finished the rest: every task exactly once over both jobs"
else
	ko "resume job $jid $(job_state "$jid"): ids $(ids "$WORK/sig-mpirun.jsonl"): $(tail -4 "$WORK/resume.out" | tr '\n' ' ')"
fi

finish
