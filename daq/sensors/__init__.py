"""The sensor layer: what a device channel *means*, configured per sensor.

``SENSORS_FIELD`` is the schema of the config key ``sensors``; :class:`SensorSet` turns
each device poll's channel values into engineering readings (see ``docs/conversions.md``).
"""

from .config import KIND_OUTPUTS, SENSORS_FIELD
from .sensorset import SensorSet

__all__ = ["KIND_OUTPUTS", "SENSORS_FIELD", "SensorSet"]
