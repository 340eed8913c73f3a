"""Simulating a fabric: ``dist-logreg simulate`` (pure: no MPI, ns-3 only in the packet engine).

It reads the schedules of :mod:`dist_logreg.collective` (what each rank sends when) and
plays them on a described fabric: a topology (which links, which paths), an engine (how
the flows share the links: phase by phase, event by event, or packet by packet in ns-3),
and, in the packet engine, a transport. Nothing here loads MPI (a test imports each module
in a fresh interpreter and checks).

====================  ==========================================================================
``spec``              fabric specs as people write them: the preset table, the common keys, files
``values``            the readers of a spec's values (rates, times, counts) and their bounds
``presets``           named presets' parameter files (superpod-h100, spectrum-x, hpn, meta-ai-zone)
``topology``          the topologies (a package): the protocol every shape answers; Clos, rails
``fabric``            a described fabric: a topology, host parameters, ECMP; ``resolve``
``from_cluster``      ``--fabric cluster:NAME``: an emulated cluster's state and measured paths
``placement``         ranks on endpoints (packed, random, spread, scatter)
``messages``          the messages of one allreduce and what each waits for
``maxmin``            max-min fair sharing of links by flows (progressive filling)
``job``               what every engine takes and gives: ``Job``, ``Result``, ``Engine``
``bounds``            what no engine's result may break: lower bounds, cuts, latency floors
``busy``              how busy each link class must have been (a file's link utilisation)
``engine``            the engine table: one record per engine, ``get_engine``
``flow``              the flow engine: phase-synchronous, or ``--exact`` through ``exact``
``exact``             the flow engine's ``--exact`` mode: the dependency graph, event by event
``eventloop``         ``--exact``'s kernels: batched events, max-min per touched component
``jit``               numba's ``njit`` where installed (the ``fast`` extra), plain Python where not
``packet``            the packet engine: the message graph as transfers in ns-3
``packet_graph``      the fabric as the packet network's graph (rails: a node per GPU, port, NIC)
``options``           typed options that carry their flag, reader and help (one default each)
``packet_options``    the packet engine's options (pure: ``--help`` without ns-3)
``packet_floor``      the packet engine's floors (rates, ports, its clock); a packet row's physics
``transports``        the packet engine's transports: their table, one module each (TCP)
``ns3net``            the packet engine's network layer: dependent transfers over ns-3
``ns3driver``         loads the packet engine's C++ (``ns3driver.cc``, ``.h``) through cppyy
``runner``            a sweep of simulations and its ``simulate.json``
``recheck``           a ``simulate.json`` held to the engines' bound, its fabric rebuilt
``workload``          ``--workload``: a training step's gradient, buckets and compute (presets)
``step``              one training step: the buckets' collectives on one stream against compute
``stepcheck``         a step block read back (``report``): its rows replayed from their times
``scenario``          ``--scenario``: a straggler, a degraded or failed link, background traffic
``sweep``             a ``--sweep`` grid: its points in order, its key, its partial file
``text``              the console table and parameter list of ``simulate``
====================  ==========================================================================
"""
