"""The simulator's topologies: one module per family of shapes, each answering one protocol.

A topology says which links there are (capacity, latency, class), where a rank's traffic
enters the fabric (its endpoint, a NIC), which paths a flow may take and which one a hash
picks, and which endpoints share a host, a leaf, a pod. Nothing above it (engines,
placement, statistics, the ns-3 builder) knows a shape's arithmetic. A preset record in
:data:`dist_logreg.sim.spec.PRESETS` names the function that builds one from a spec.

==============  ====================================================================
``base``        the ``Topology`` protocol, the ECMP hash (``Ecmp``), helpers for routes
``clos``        the Clos family (flat, leaf-spine, fat-tree, clos3): shape, links, routes
``rail``        the rail family (rail, rail3, tor, named presets): GPUs, PXN, routes
``rail_shape``  the rail family's shape from a spec, its link ids and links
==============  ====================================================================
"""
