"""Level-gauge driver (Modbus): 4–20 mA input modules, radar/ultrasonic, shaft encoders."""

from .driver import LevelGaugeDriver, loop_ma, speed_of_sound

__all__ = ["LevelGaugeDriver", "loop_ma", "speed_of_sound"]
