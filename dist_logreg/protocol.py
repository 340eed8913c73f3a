"""What a job and the tools that start it (supervise, cluster) tell each other (pure: no MPI,
no numpy).

``dist-logreg supervise`` starts each attempt with these environment variables; the job
reads them. Kept apart from both sides so that neither imports the other.
"""

#: Which attempt of a supervised run this is (0 or absent: the first, or unsupervised).
ATTEMPT_VAR = "DIST_LOGREG_ATTEMPT"
#: A file where rank 0 records its progress (for the supervisor's "work lost").
STATUS_VAR = "DIST_LOGREG_STATUS"
#: Set by an emulated-cluster launcher: a JSON object describing the cluster (topology, link
#: rates, delay, loss, ...), recorded as-is in the ``run`` block of ``summary.json`` and the
#: bench JSON. Rank 0 reads it, so it needs to reach rank 0 only (``mpirun -x`` across hosts).
CLUSTER_INFO_VAR = "DIST_LOGREG_CLUSTER_INFO"
