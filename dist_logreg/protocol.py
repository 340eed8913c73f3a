"""What a supervised job and its supervisor tell each other (pure: no MPI, no numpy).

``dist-logreg supervise`` starts each attempt with these environment variables; the job
reads them. Kept apart from both sides so that neither imports the other.
"""

#: Which attempt of a supervised run this is (0 or absent: the first, or unsupervised).
ATTEMPT_VAR = "DIST_LOGREG_ATTEMPT"
#: A file where rank 0 records its progress (for the supervisor's "work lost").
STATUS_VAR = "DIST_LOGREG_STATUS"
