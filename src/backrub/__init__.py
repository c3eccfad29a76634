"""backrub coaches a person through a back massage at home, safely, step by step."""

__version__ = "0.1.0"
