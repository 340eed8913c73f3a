"""The packet engine's transports: one record each in :mod:`.table`, one module each.

A transport is what carries the messages between hosts in ns-3 (TCP sockets; RoCEv2 queue
pairs over UDP). Its record says which options it takes (a typed options class, its fields with
their flags), which C++ files it brings (compiled by :func:`..ns3driver.load`), what it
counts per connection, and how ``simulate`` and ``report`` name it. Adding one is a module
here (its options class with ``create(gbl, net)``, its ``.cc``) and a record in the table
(``docs/packet.md``, "Adding a transport").

==========  ==============================================================================
``table``   the transport records, ``get``, ``names``, ``register`` (pure: no ns-3)
``tcp``     TCP: its options (``--tcp``, ``--min-rto``) and its ns-3 side (``tcp.cc``)
``roce``    RoCEv2: its options (``--retransmit``, ``--cc``, DCQCN's) and ``roce.cc``
==========  ==============================================================================
"""
