"""GNSS for dam monitoring: receiver streams in, session baselines and deformation out.

One subpackage per stage (each has a README.md: what comes in, what goes out, what it may
import): ``streams`` (bytes → decoded records), ``rinex`` (files ↔ the data model),
``solver`` (a session's observations → a static baseline → a deformation), ``sessions`` (the
daemon's recorder, session store, solving thread and publishing), ``replay`` (simulated
receivers) and ``cli`` (the ``daq gnss`` commands). The shared data model is :mod:`.obs`,
the ``gnss:`` configuration section :mod:`.gnss_config`. See README.md.
"""
