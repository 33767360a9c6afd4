"""The classical (no-weights) change detector, split by job: settings, scale from GSD, alignment, differencing,
region filtering, the detector's steps, calibration of its confidence, and the mask provider."""
