"""analysis: FID, precision/recall, non-ideality sweeps, energy per inference, reports.

Empty until the metrics, sweep and energy issues land; see ARCHITECTURE.md.
"""
