"""RINEX in and out: one import point for the readers and the 3.04 writer."""

from .nav_reader import read_nav
from .obs_reader import read_obs
from .writer import nav_to_text, obs_to_text, write_nav, write_obs

__all__ = ["nav_to_text", "obs_to_text", "read_nav", "read_obs", "write_nav", "write_obs"]
