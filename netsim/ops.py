"""Collective operation names, shared by the workload's programs and the collectives that run them."""

ALLREDUCE, ALLGATHER, REDUCESCATTER, ALLTOALL, SENDRECV = (
    "allreduce",
    "allgather",
    "reducescatter",
    "alltoall",
    "sendrecv",
)
# Rooted collectives (nccl-tests' broadcast_perf / reduce_perf): a pipelined chain from or to the root.
BROADCAST, REDUCE = "broadcast", "reduce"
