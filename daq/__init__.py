"""damwatch-daq: edge data acquisition for dam-safety monitoring."""

__version__ = "0.1.0"
