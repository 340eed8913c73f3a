"""Reasoning about collectives, pure: imports nothing that loads MPI (numpy and scipy only).

``sim``: the simulator engines (the flow engine of ``dist-logreg simulate``; the packet
engine plugs into the same interface).
"""
