#!/usr/bin/env bash
# --gpus-per-worker through the command: `gpudispatch placement --json` on
# every fake node of ../shared/topologies ($GD_TOPO_DIR) for N = 1, 2, 4, 8
# (and 3, which divides no GPU count), the rank counts that do not fit
# (exit 2), and a run whose tasks print the GPUs they were given.
source "$(dirname "$0")/cli_lib.sh"
: "${GD_TOPO_DIR:?GD_TOPO_DIR must name the fake topologies}"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

# on PRESET NP args...: gpudispatch under mpiexec on the fake node
on() {
	local preset=$1
	shift
	HWLOC_XMLFILE="$GD_TOPO_DIR/node-$preset.xml" gd "$@"
}

# expect PRESET N WORKERS "g,g|g,g" "cpuset|cpuset" ENVVAR "value|value"
expect() {
	local preset=$1 n=$2 nw=$3
	on "$preset" $((nw + 1)) placement --json --gpus-per-worker "$n"
	check "$preset N=$n: exit 0 (got $RC: $(head -c 300 err.txt))" [ "$RC" = 0 ]
	check "$preset N=$n: $nw workers with GPUs $4, cpusets $5" \
		"$PY" - "$4" "$5" "$6" "$7" <<'PYEOF'
import json, sys
rows = json.load(open("out.txt"))
gpus, cpus, var, vals = (sys.argv[1].split("|"), sys.argv[2].split("|"),
                         sys.argv[3], sys.argv[4].split("|"))
assert len(rows) == len(gpus), rows
for r, g, c, v in zip(rows, gpus, cpus, vals):
    got = ",".join(str(x["index"]) for x in r["gpus"])
    assert got == g, (got, g)
    assert r["gpu_index"] == int(g.split(",")[0]), r
    assert r["cpuset"] == c, (r["cpuset"], c)
    # each GPU keeps its own locality; the worker's cpuset is their union
    def cpus(l):
        out = set()
        for p in l.split(","):
            a, _, b = p.partition("-")
            out |= set(range(int(a), int(b or a) + 1))
        return out
    assert cpus(c) == set().union(*(cpus(x["cpuset"]) for x in r["gpus"])), r
    # CUDA: the topology's UUIDs (fake ones end in the GPU's index)
    toks = [str(int(t.rsplit("-", 1)[1], 16)) if t.startswith("GPU-") else t
            for t in r["env"][var].split(",")]
    assert ",".join(toks) == v, (r["env"], v)
    if var == "CUDA_VISIBLE_DEVICES":
        assert r["env"][var] == ",".join(x["uuid"] for x in r["gpus"]), r
    assert r["error"] is None, r
PYEOF
}

S0=0-7,16-23 S1=8-15,24-31
# the DGX-like node: switches 0-1, 2-3 | 4-5, 6-7; sockets 0-3 | 4-7
expect 2s-8gpu 1 8 "0|1|2|3|4|5|6|7" "$S0|$S0|$S0|$S0|$S1|$S1|$S1|$S1" CUDA_VISIBLE_DEVICES "0|1|2|3|4|5|6|7"
expect 2s-8gpu 2 4 "0,1|2,3|4,5|6,7" "$S0|$S0|$S1|$S1" CUDA_VISIBLE_DEVICES "0,1|2,3|4,5|6,7"
expect 2s-8gpu 4 2 "0,1,2,3|4,5,6,7" "$S0|$S1" CUDA_VISIBLE_DEVICES "0,1,2,3|4,5,6,7"
expect 2s-8gpu 8 1 "0,1,2,3,4,5,6,7" "0-31" CUDA_VISIBLE_DEVICES "0,1,2,3,4,5,6,7"
# fewer workers than groups: the closest groups (never one across sockets)
expect 2s-8gpu 4 1 "0,1,2,3" "$S0" CUDA_VISIBLE_DEVICES "0,1,2,3"
# N = 3 does not divide 8: one group per socket, GPUs 3 and 7 left over
expect 2s-8gpu 3 2 "0,1,2|4,5,6" "$S0|$S1" CUDA_VISIBLE_DEVICES "0,1,2|4,5,6"
check "2s-8gpu N=3: a note names the GPUs left over" \
	grep -q '"note": "8 usable GPUs on .* do not split into groups of 3 (gpus_per_worker): GPUs 3, 7 left unused"' out.txt
# the AMD node: 2 GPUs per NUMA node, 2 NUMA nodes per socket
A0=0-3,16-19 A1=4-7,20-23 A2=8-11,24-27 A3=12-15,28-31
expect 2s4n-8gpu-amd 1 8 "0|1|2|3|4|5|6|7" "$A0|$A0|$A1|$A1|$A2|$A2|$A3|$A3" ROCR_VISIBLE_DEVICES "0|1|2|3|4|5|6|7"
expect 2s4n-8gpu-amd 2 4 "0,1|2,3|4,5|6,7" "$A0|$A1|$A2|$A3" ROCR_VISIBLE_DEVICES "0,1|2,3|4,5|6,7"
expect 2s4n-8gpu-amd 4 2 "0,1,2,3|4,5,6,7" "0-7,16-23|8-15,24-31" ROCR_VISIBLE_DEVICES "0,1,2,3|4,5,6,7"
check "amd N=4: HIP_VISIBLE_DEVICES numbers what ROCr shows" grep -q '"HIP_VISIBLE_DEVICES": "0,1,2,3"' out.txt
expect 2s4n-8gpu-amd 8 1 "0,1,2,3,4,5,6,7" "0-31" ROCR_VISIBLE_DEVICES "0,1,2,3,4,5,6,7"
expect 2s4n-8gpu-amd 3 2 "0,1,2|4,5,6" "0-7,16-23|8-15,24-31" ROCR_VISIBLE_DEVICES "0,1,2|4,5,6"
# the 2-GPU node
expect 1s-2gpu 1 2 "0|1" "0-15|0-15" CUDA_VISIBLE_DEVICES "0|1"
expect 1s-2gpu 2 1 "0,1" "0-15" CUDA_VISIBLE_DEVICES "0,1"
for n in 4 8; do
	on 1s-2gpu 2 placement --json --gpus-per-worker $n
	check "1s-2gpu N=$n: more GPUs than the node has is a usage error (exit 2, got $RC)" [ "$RC" = 2 ]
	check "1s-2gpu N=$n: the error says so" \
		grep -q "gpus_per_worker is $n but the node has only 2 usable GPUs" err.txt
done
# no GPU: CPU workers, whatever N
for n in 1 2 4 8; do
	on nogpu-vm 2 placement --json --gpus-per-worker $n
	check "nogpu-vm N=$n: a CPU worker (exit $RC)" \
		"$PY" -c 'import json; r=json.load(open("out.txt")); assert len(r)==1 and r[0]["cpu_worker"] and r[0]["gpus"]==[], r'
done
# rank counts that do not fit: a usage error naming the numbers
on 2s-8gpu 4 placement --gpus-per-worker 4
check "2s-8gpu N=4 with 3 workers: exit 2 (got $RC)" [ "$RC" = 2 ]
check "2s-8gpu N=4 with 3 workers: the error names the counts" \
	grep -q "3 worker ranks on this node with 4 GPUs each need 12 GPUs, but the 8 usable GPUs make only 2 groups of 4; start at most 2 worker ranks per node" err.txt
on 2s-8gpu 4 placement --gpus-per-worker 3
check "2s-8gpu N=3 with 3 workers: exit 2 (got $RC)" [ "$RC" = 2 ]
# --gpus restricts first: 0,1 share a switch; 2 and 4 are on different sockets
on 2s-8gpu 3 placement --json --gpus-per-worker 2 --gpus 0,1,2,4
check "--gpus 0,1,2,4 N=2: groups 0,1 and 2,4" \
	"$PY" -c 'import json; r=json.load(open("out.txt")); assert [[g["index"] for g in x["gpus"]] for x in r]==[[0,1],[2,4]], r'
# the text report lists the GPUs of each worker
on 2s-8gpu 3 placement --gpus-per-worker 4
check "text report: worker 1 has GPUs 4,5,6,7 on NUMA node 1" \
	grep -Eq '^ +1 .* 4,5,6,7 +0000:87:00.0,0000:90:00.0,0000:b7:00.0,0000:bd:00.0 +1 +8-15,24-31 ' out.txt
# bad values
for v in 0 17 x -1; do
	on 2s-8gpu 2 placement --gpus-per-worker "$v"
	check "--gpus-per-worker $v: exit 2 (got $RC)" [ "$RC" = 2 ]
done
check "--gpus-per-worker: the error says what it takes" grep -q "from 1 to 16" err.txt

# a run: each task prints the GPUs its executor was given
printf 'a\nb\nc\nd\ne\nf\n' >tasks.txt
on 2s-8gpu 3 run --tasks tasks.txt --gpus-per-worker 4 --ui none --results r.jsonl --output-dir o \
	--window 1 \
	--shell -- 'sleep 0.3; echo "$CUDA_VISIBLE_DEVICES $GPUDISPATCH_GPU $GPUDISPATCH_GPUS"'
check "run --gpus-per-worker 4: exit 0 (got $RC: $(head -c 300 err.txt))" [ "$RC" = 0 ]
# (the fake UUIDs end in the GPU's index)
cat o/*.out | sed 's/GPU-00000000-fa4e-0000-0000-00000000000//g; s/ [a-f]$//' | sort -u >seen.txt
check "run: the tasks saw CUDA_VISIBLE_DEVICES, GPUDISPATCH_GPU and GPUDISPATCH_GPUS of both groups ($(tr '\n' ' ' <seen.txt))" \
	[ "$(tr '\n' ' ' <seen.txt)" = "0,1,2,3 0 0,1,2,3 4,5,6,7 4 4,5,6,7 " ]
on 2s-8gpu 3 run --tasks tasks.txt --gpus-per-worker 4 --ui text --window 1 -- sh -c 'sleep 0.3' {}
check "run --ui text: exit 0 (got $RC)" [ "$RC" = 0 ]
check "run --ui text: the summary lists each worker's GPUs" \
	sh -c 'grep -Eq "^ +0 +[^ ]+ +0,1,2,3 +finished" out.txt && grep -Eq "^ +1 +[^ ]+ +4,5,6,7 +finished" out.txt'
on 2s-8gpu 4 run --tasks tasks.txt --gpus-per-worker 4 --ui none -- true
check "run: 3 workers of 4 GPUs on 8 GPUs is a usage error (exit 2, got $RC)" [ "$RC" = 2 ]
check "run: the error names the placement" grep -q "placement: .*make only 2 groups of 4" err.txt

finish
