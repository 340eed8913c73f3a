"""Named fabric presets: one parameter file each, read by :func:`dist_logreg.sim.spec.parse_spec`
below whatever the spec gives (``superpod-h100:units=64``). Sources and drawings:
``docs/rails.md``.

=======================  ==================================================================
``superpod-h100.toml``   NVIDIA DGX SuperPOD, DGX H100 nodes (the reference architecture)
``spectrum-x.toml``      NVIDIA Spectrum-X reference for HGX (2-8-9-400), rail-optimized
``hpn.toml``             Alibaba HPN (SIGCOMM'24): dual-ToR, dual-plane, 2 x 200G per NIC
``meta-ai-zone.toml``    Meta's RoCE AI zone (SIGCOMM'24): ToR-wired, non-blocking 2-stage
=======================  ==================================================================
"""
