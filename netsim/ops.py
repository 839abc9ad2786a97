"""Collective operation names, shared by the workload's programs and the collectives that run them."""

ALLREDUCE, ALLGATHER, REDUCESCATTER, ALLTOALL, SENDRECV = (
    "allreduce",
    "allgather",
    "reducescatter",
    "alltoall",
    "sendrecv",
)
