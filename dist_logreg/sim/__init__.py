"""Simulating a fabric: ``dist-logreg simulate`` (pure: no MPI, ns-3 only in the packet engine).

It reads the schedules of :mod:`dist_logreg.collective` (what each rank sends when) and
plays them on a described fabric: a topology (which links, which paths), an engine (how
the flows share the links: phase by phase, event by event, or packet by packet in ns-3),
and, in the packet engine, a transport. Nothing here loads MPI (a test imports each module
in a fresh interpreter and checks).

====================  =============================================================
"""
