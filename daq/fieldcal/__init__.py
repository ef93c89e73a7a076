"""Field re-zero and two-point calibration with history (issue 11): ``daq calibrate``."""
