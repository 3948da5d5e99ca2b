"""Phase labels of the simulated anode, in one place.

Every labelled volume of the project (the phantom's truth, segmentations)
uses these integers, stored as uint8.
"""

PORE, BINDER, PARTICLE, DENSE = 0, 1, 2, 3
#: Label -> name, in label order.
PHASE_NAMES = ("pore", "binder", "particle", "dense")
