"""compiler: checkpoint → ArrayIR (quantise, prune, partition, route, map, emit).

Empty until the compiler issue lands; see ARCHITECTURE.md for what it will own.
"""
